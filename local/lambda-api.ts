import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FunctionError, FunctionThrottledError, FunctionTimeoutError, type FunctionHost } from './function-host.ts';
import { close, listen, readBody, refuseBody } from './http.ts';

/** A function's aliases, as the templates declare them: which qualifiers Invoke accepts besides `$LATEST`. */
export type AliasNames = ReadonlyMap<string, ReadonlySet<string>>;

/** The aliases of each function of the assembly, by function name. */
export function aliasNames(aliases: ReadonlyArray<{ functionName: string; aliasName: string }>): AliasNames {
  const names = new Map<string, Set<string>>();
  for (const { functionName, aliasName } of aliases) names.set(functionName, (names.get(functionName) ?? new Set()).add(aliasName));
  return names;
}

/** Lambda's limit on a synchronous invocation's payload. */
const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/**
 * The part of the Lambda API that functions call: Invoke. The AWS SDK's
 * LambdaClient reaches it through AWS_ENDPOINT_URL_LAMBDA, so the router runs
 * the same code locally as on AWS. Function errors come back as Lambda sends
 * them: 200 with `X-Amz-Function-Error` and the error as payload. A
 * qualified name runs the function's one local copy when the qualifier is
 * `$LATEST` or one of its aliases, and is not found otherwise, as on AWS.
 */
export async function startLambdaApi(
  host: Pick<FunctionHost, 'has' | 'invoke'>,
  port = 0,
  aliases: AliasNames = new Map(),
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    handle(host, aliases, req, res).catch((error: unknown) => {
      sendError(res, 500, 'ServiceException', (error as Error).message);
    });
  });
  await listen(server, port);
  const { port: bound } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${bound}`, close: () => close(server) };
}

async function handle(host: Pick<FunctionHost, 'has' | 'invoke'>, aliases: AliasNames, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const match = INVOKE_PATH.exec(url.pathname);
  if (req.method !== 'POST' || !match) return sendError(res, 404, 'UnknownOperationException', 'only Invoke is emulated');
  const requested = decodeURIComponent(match[1] as string);
  const { name, qualifier = url.searchParams.get('Qualifier') ?? undefined } = functionReference(requested);
  if (!host.has(name)) return sendError(res, 404, 'ResourceNotFoundException', `Function not found: ${name}`);
  if (qualifier !== undefined && qualifier !== '$LATEST' && !aliases.get(name)?.has(qualifier)) {
    return sendError(res, 404, 'ResourceNotFoundException', `Function not found: ${name}:${qualifier}`);
  }
  const body = await readBody(req, MAX_PAYLOAD_BYTES);
  if (!body) {
    const message = `the request payload is over ${MAX_PAYLOAD_BYTES} bytes`;
    return refuseBody(
      res,
      413,
      { 'content-type': 'application/json', 'x-amzn-errortype': 'RequestTooLargeException' },
      JSON.stringify({ Type: 'User', message }),
    );
  }
  let event: unknown;
  try {
    event = body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch {
    return sendError(res, 400, 'InvalidRequestContentException', 'Could not parse request body into json');
  }
  if (req.headers['x-amz-invocation-type'] === 'Event') {
    host.invoke(name, event).catch(() => undefined);
    res.writeHead(202).end();
    return;
  }
  try {
    const result = await host.invoke(name, event);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
  } catch (error) {
    if (error instanceof FunctionThrottledError) return sendError(res, 429, 'TooManyRequestsException', error.message);
    const payload = lambdaErrorPayload(error);
    res.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled' }).end(JSON.stringify(payload));
  }
}

/** A failed invocation as Lambda reports it: the function's error, or Lambda's own for a timeout. */
export function lambdaErrorPayload(error: unknown): { errorType: string; errorMessage: string; trace?: string[] } {
  if (error instanceof FunctionTimeoutError) return { errorType: 'Sandbox.Timedout', errorMessage: error.message };
  if (error instanceof FunctionError) return error.error;
  return { errorType: 'Runtime.Unknown', errorMessage: (error as Error).message };
}

/** Accepts a name, a partial ARN (`account:function:name`) or a full ARN, with or without a qualifier. */
export function functionReference(nameOrArn: string): { name: string; qualifier?: string } {
  const parts = nameOrArn.split(':');
  const at = nameOrArn.startsWith('arn:') ? 6 : parts[1] === 'function' ? 2 : 0;
  const qualifier = parts[at + 1];
  return { name: parts[at] as string, ...(qualifier !== undefined && { qualifier }) };
}

/** The function a name or ARN names, its qualifier dropped. */
export function functionNameOf(nameOrArn: string): string {
  return functionReference(nameOrArn).name;
}

function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type }).end(JSON.stringify({ Type: 'User', message }));
}
