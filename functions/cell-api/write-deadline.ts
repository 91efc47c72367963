import { AsyncLocalStorage } from 'node:async_hooks';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { WRITE_SETTLE_MS } from '@item-master/shared';

/** A write could not be sent, or was answered, in time to be acknowledged: the tenant may be moving, the client retries. */
export class WriteWindowClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WriteWindowClosedError';
  }
}

/** The table writes the cell API sends, as the low-level and the document client name them. */
const WRITES = new Set([
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'BatchWriteItemCommand',
  'TransactWriteItemsCommand',
  'PutCommand',
  'UpdateCommand',
  'DeleteCommand',
  'BatchWriteCommand',
  'TransactWriteCommand',
]);

/**
 * The deadline of a request's writes (its ownership answer's
 * `writeDeadline`), held for the request's async context and checked by
 * the table client on every attempt of every write: an attempt is not sent
 * after the deadline, and its answer is not taken as success if it came
 * later than WRITE_SETTLE_MS after it. So every write a client saw
 * acknowledged was applied before its deadline plus the settle time, and a
 * move that waits that long after its fence reads every one of them.
 */
export class WriteDeadlines {
  private readonly current = new AsyncLocalStorage<number>();

  constructor(private readonly now: () => number = Date.now) {}

  run<T>(deadline: number, work: () => Promise<T>): Promise<T> {
    return this.current.run(deadline, work);
  }

  /** Guards every write the client sends (per attempt: inside the SDK's retries). */
  guard(client: DynamoDBClient): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const deadline = this.current.getStore();
        if (deadline === undefined || !WRITES.has(context.commandName ?? '')) return next(args);
        if (this.now() >= deadline)
          throw new WriteWindowClosedError('the write was not sent: its ownership check is too old, or its tenant is being fenced');
        const output = await next(args);
        if (this.now() >= deadline + WRITE_SETTLE_MS) throw new WriteWindowClosedError('the write was answered too late to be acknowledged');
        return output;
      },
      { step: 'finalizeRequest', priority: 'low', name: 'writeDeadline' },
    );
  }
}
