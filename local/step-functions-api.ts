import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { close, listen, readBody, refuseBody } from './http.ts';

/** Above the 256 KB execution input with the rest of a request's fields. */
const MAX_REQUEST_BYTES = 1024 * 1024;
import { StepFunctionsError, type Execution, type ExecutionStatus, type LocalStepFunctions } from './step-functions.ts';

const TARGET_PREFIX = 'AWSStepFunctions.';

/**
 * The part of the Step Functions API the app calls (StartExecution,
 * DescribeExecution, ListExecutions), in its AWS JSON 1.0 protocol, so that
 * the SDK's SFNClient reaches it through AWS_ENDPOINT_URL_SFN.
 */
export async function startStepFunctionsApi(sfn: LocalStepFunctions, port = 0): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    handle(sfn, req, res).catch((error: unknown) => {
      if (error instanceof StepFunctionsError) return sendError(res, 400, error.type, error.message);
      sendError(res, 500, 'InternalFailure', (error as Error).message);
    });
  });
  await listen(server, port);
  const { port: bound } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${bound}`, close: () => close(server) };
}

async function handle(sfn: LocalStepFunctions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = String(req.headers['x-amz-target'] ?? '');
  if (req.method !== 'POST' || !target.startsWith(TARGET_PREFIX)) {
    return sendError(res, 400, 'UnknownOperationException', 'send AWS JSON 1.0 requests with X-Amz-Target');
  }
  const raw = await readBody(req, MAX_REQUEST_BYTES);
  if (!raw) {
    const message = `the request is over ${MAX_REQUEST_BYTES} bytes`;
    return refuseBody(res, 413, { 'content-type': 'application/json', 'x-amzn-errortype': 'InvalidExecutionInput' }, JSON.stringify({ message }));
  }
  let body: Record<string, string | undefined>;
  try {
    body = JSON.parse(raw.toString('utf8') || '{}') as Record<string, string | undefined>;
  } catch {
    return sendError(res, 400, 'SerializationException', 'the request body is not JSON');
  }
  const operation = target.slice(TARGET_PREFIX.length);
  if (operation === 'StartExecution') {
    const { executionArn, startDate } = sfn.start({ stateMachineArn: body.stateMachineArn, name: body.name, input: body.input });
    return send(res, { executionArn, startDate: epochSeconds(startDate) });
  }
  if (operation === 'DescribeExecution') return send(res, wire(sfn.describe(body.executionArn)));
  if (operation === 'ListExecutions') {
    const executions = sfn.list(body.stateMachineArn, body.statusFilter as ExecutionStatus | undefined);
    return send(res, { executions: executions.map(({ input: _i, output: _o, error: _e, cause: _c, ...summary }) => wire(summary)) });
  }
  sendError(res, 400, 'UnknownOperationException', `${operation} is not emulated locally`);
}

/** Dates travel as epoch seconds. */
function wire(execution: Partial<Execution>): Record<string, unknown> {
  const { startDate, stopDate, ...rest } = execution;
  return { ...rest, ...(startDate && { startDate: epochSeconds(startDate) }), ...(stopDate && { stopDate: epochSeconds(stopDate) }) };
}

function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

function send(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
}

function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify({ __type: type, message }));
}
