import { AsyncLocalStorage } from 'node:async_hooks';
import { PutItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { JOURNAL_ENTITY, journalKey, tenantKey } from '@item-master/shared';

/** A key as a command carries it: marshalled (`{ S: … }`), or as the document client was given it. */
type Key = Record<string, AttributeValue | string> | undefined;

function text(value: AttributeValue | string | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.S;
}

/** The record keys a write command touches, whichever client sent it (keys marshalled or not: see `text`). */
function keysOf(commandName: string, input: Record<string, unknown>): Array<{ table: string; key: Key }> {
  const table = String(input.TableName ?? '');
  switch (commandName) {
    case 'PutItemCommand':
    case 'PutCommand':
      return [{ table, key: input.Item as Key }];
    case 'UpdateItemCommand':
    case 'UpdateCommand':
    case 'DeleteItemCommand':
    case 'DeleteCommand':
      return [{ table, key: input.Key as Key }];
    case 'TransactWriteItemsCommand':
    case 'TransactWriteCommand':
      return ((input.TransactItems ?? []) as Array<Record<string, { TableName?: string; Item?: Key; Key?: Key }>>).flatMap((item) => {
        const write = item.Put ?? item.Update ?? item.Delete;
        return write ? [{ table: String(write.TableName ?? ''), key: write.Item ?? write.Key }] : [];
      });
    case 'BatchWriteItemCommand':
    case 'BatchWriteCommand':
      return Object.entries(
        (input.RequestItems ?? {}) as Record<string, Array<{ PutRequest?: { Item: Key }; DeleteRequest?: { Key: Key } }>>,
      ).flatMap(([name, requests]) => requests.map((request) => ({ table: name, key: request.PutRequest?.Item ?? request.DeleteRequest?.Key })));
    default:
      return [];
  }
}

/**
 * The cell API's side of a move's change journal (see JOURNAL_PREFIX): for
 * a request of a tenant that is moving away from this cell, every write the
 * table client sends is preceded by a journal entry per record it touches.
 * Requests of other tenants, and every request when no move runs, write
 * nothing more.
 */
export class ChangeJournal {
  private readonly current = new AsyncLocalStorage<{ moveId: string; tenantId: string }>();

  constructor(
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs a request's work with its writes journaled for the move. */
  run<T>(journal: { moveId: string; tenantId: string }, work: () => Promise<T>): Promise<T> {
    return this.current.run(journal, work);
  }

  /** Journals every write of the client made inside `run`, before the write is sent. */
  guard(client: DynamoDBClient): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const journal = this.current.getStore();
        if (journal === undefined) return next(args);
        const pk = tenantKey(journal.tenantId);
        const sks = keysOf(context.commandName ?? '', args.input as Record<string, unknown>)
          .filter(({ table, key }) => table === this.tableName && text(key?.pk) === pk && text(key?.sk) !== undefined)
          .map(({ key }) => text(key!.sk)!);
        const at = this.now();
        // Outside the journal's own context: its entries are not journaled again.
        await this.current.exit(() =>
          Promise.all(
            [...new Set(sks)].map((sk) => {
              const { pk: journalPk, sk: journalSk } = journalKey(journal.moveId, journal.tenantId, sk);
              return client.send(
                new PutItemCommand({
                  TableName: this.tableName,
                  Item: {
                    pk: { S: journalPk },
                    sk: { S: journalSk },
                    entity: { S: JOURNAL_ENTITY },
                    tenantId: { S: journal.tenantId },
                    recordSk: { S: sk },
                    at: { N: String(at) },
                  },
                }),
              );
            }),
          ),
        );
        return next(args);
      },
      // Before the request is built: the input is as the command was given it (the document client's, or marshalled).
      { step: 'serialize', priority: 'high', name: 'changeJournal' },
    );
  }
}
