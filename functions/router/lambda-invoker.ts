import type { ALBEvent, ALBResult } from 'aws-lambda';
import { AwsApiError, type AwsApi } from './aws-api.ts';
import { CellUnavailableError, type CellInvoker } from './router.ts';
import type { CellTarget } from './routing-cache.ts';

/**
 * Invokes cell API functions synchronously through the Lambda API: a signed
 * POST to Invoke, nothing else. A throttled Invoke (429) is a cell to retry
 * later; any other refusal, a function error (`X-Amz-Function-Error`), no
 * answer and an answer that is not an ALB result are a cell that failed.
 */
export class LambdaCellInvoker implements CellInvoker {
  constructor(
    private readonly lambda: AwsApi,
    /** The trace header of the invocation being served: Lambda sets `_X_AMZN_TRACE_ID` for each. */
    private readonly traceHeader: () => string | undefined = () => process.env._X_AMZN_TRACE_ID,
  ) {}

  async invoke({ cellId, functionName }: CellTarget, event: ALBEvent): Promise<ALBResult> {
    const trace = this.traceHeader();
    let payload: string;
    let functionError: string | undefined;
    try {
      const response = await this.lambda.post({
        path: `/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`,
        headers: {
          'content-type': 'application/json',
          'x-amz-invocation-type': 'RequestResponse',
          // The cell's invocation joins the router's trace, as the SDK's recursion-detection middleware would make it.
          ...(trace && { 'x-amzn-trace-id': trace }),
        },
        body: JSON.stringify(event),
      });
      payload = response.body;
      functionError = response.headers['x-amz-function-error'];
    } catch (error) {
      if (!(error instanceof AwsApiError)) throw error;
      throw new CellUnavailableError(cellId, error.status === 429, `invoking ${functionName} failed: ${error.message}`);
    }
    if (functionError !== undefined) {
      throw new CellUnavailableError(cellId, false, `${functionName} failed (${functionError}): ${payload.slice(0, 500)}`);
    }
    const result = parseResult(payload);
    if (!result) throw new CellUnavailableError(cellId, false, `${functionName} answered a malformed response`);
    return result;
  }
}

function parseResult(payload: string): ALBResult | undefined {
  try {
    const value: unknown = JSON.parse(payload);
    if (typeof value === 'object' && value !== null && typeof (value as ALBResult).statusCode === 'number') {
      return value as ALBResult;
    }
  } catch {
    // fall through: a payload that is not JSON is malformed
  }
  return undefined;
}
