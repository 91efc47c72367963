import { InvokeCommand, LambdaClient, TooManyRequestsException } from '@aws-sdk/client-lambda';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { CellUnavailableError, type CellInvoker } from './router.ts';
import type { CellTarget } from './routing-cache.ts';

/** Invokes cell API functions synchronously through the Lambda API. */
export class LambdaCellInvoker implements CellInvoker {
  constructor(private readonly client: LambdaClient) {}

  async invoke({ cellId, functionName }: CellTarget, event: ALBEvent): Promise<ALBResult> {
    let output;
    try {
      output = await this.client.send(
        new InvokeCommand({ FunctionName: functionName, Payload: JSON.stringify(event) }),
      );
    } catch (error) {
      throw new CellUnavailableError(
        cellId,
        error instanceof TooManyRequestsException,
        `invoking ${functionName} failed: ${(error as Error).message}`,
      );
    }
    const payload = output.Payload ? new TextDecoder().decode(output.Payload) : '';
    if (output.FunctionError) {
      throw new CellUnavailableError(cellId, false, `${functionName} failed: ${payload.slice(0, 500)}`);
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
