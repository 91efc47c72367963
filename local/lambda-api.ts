import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FunctionError, FunctionThrottledError, FunctionTimeoutError, type FunctionHost } from './function-host.ts';
import { close, listen, readBody, refuseBody } from './http.ts';

/** Lambda's limit on a synchronous invocation's payload. */
const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/**
 * The part of the Lambda API that functions call: Invoke. The AWS SDK's
 * LambdaClient reaches it through AWS_ENDPOINT_URL_LAMBDA, so the router runs
 * the same code locally as on AWS. Function errors come back as Lambda sends
 * them: 200 with `X-Amz-Function-Error` and the error as payload.
 */
export async function startLambdaApi(host: FunctionHost, port = 0): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    handle(host, req, res).catch((error: unknown) => {
      sendError(res, 500, 'ServiceException', (error as Error).message);
    });
  });
  await listen(server, port);
  const { port: bound } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${bound}`, close: () => close(server) };
}

async function handle(host: FunctionHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const match = INVOKE_PATH.exec(new URL(req.url ?? '/', 'http://localhost').pathname);
  if (req.method !== 'POST' || !match) return sendError(res, 404, 'UnknownOperationException', 'only Invoke is emulated');
  const name = functionNameOf(decodeURIComponent(match[1] as string));
  if (!host.has(name)) return sendError(res, 404, 'ResourceNotFoundException', `Function not found: ${name}`);
  const body = await readBody(req, MAX_PAYLOAD_BYTES);
  if (!body) {
    const message = `the request payload is over ${MAX_PAYLOAD_BYTES} bytes`;
    return refuseBody(res, 413, { 'content-type': 'application/json', 'x-amzn-errortype': 'RequestTooLargeException' }, JSON.stringify({ Type: 'User', message }));
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

/** Accepts a name, a partial ARN or a full ARN, with or without a qualifier. */
export function functionNameOf(nameOrArn: string): string {
  if (!nameOrArn.startsWith('arn:')) return nameOrArn.split(':')[0] as string;
  return nameOrArn.split(':')[6] as string;
}

function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type }).end(JSON.stringify({ Type: 'User', message }));
}
