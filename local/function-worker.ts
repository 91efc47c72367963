/**
 * One warm instance of one function, in its own process with only that
 * function's environment. Loads the bundle once (its init), then runs
 * invocations the parent sends over IPC.
 */
import { pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';

export type WorkerRequest = { type: 'invoke'; id: number; event: unknown; requestId: string; deadline: number };
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'init-error'; error: SerializedError }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: SerializedError };
export type SerializedError = { errorType: string; errorMessage: string; trace: string[] };

const [entry, exportName = 'handler'] = process.argv.slice(2);
const send = (reply: WorkerReply) => process.send?.(reply);

function serialize(error: unknown): SerializedError {
  const err = error instanceof Error ? error : new Error(String(error));
  return { errorType: err.name, errorMessage: err.message, trace: (err.stack ?? '').split('\n') };
}

type Handler = (event: unknown, context: Context) => Promise<unknown>;
let handler: Handler;
try {
  const module = (await import(pathToFileURL(entry as string).href)) as Record<string, unknown>;
  if (typeof module[exportName] !== 'function') throw new Error(`${entry} exports no function ${exportName}`);
  handler = module[exportName] as Handler;
  send({ type: 'ready' });
} catch (error) {
  send({ type: 'init-error', error: serialize(error) });
  process.exit(1);
}

const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'function';
process.on('message', async (request: WorkerRequest) => {
  if (request.type !== 'invoke') return;
  const context: Context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128',
    awsRequestId: request.requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, request.deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  try {
    const result = await handler(request.event, context);
    send({ type: 'result', id: request.id, result: result === undefined ? null : JSON.parse(JSON.stringify(result)) });
  } catch (error) {
    send({ type: 'error', id: request.id, error: serialize(error) });
  }
});
process.on('disconnect', () => process.exit(0));
