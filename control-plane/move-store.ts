import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, paginateQuery, PutCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { MOVE_PK, moveRecordSchema, type MoveRecord } from './move-record.ts';

/** A revert claimed the move while this engine worked on it: the move's next step stops it. */
export class MoveRevertedError extends Error {
  constructor(readonly moveId: string) {
    super(`move ${moveId} was claimed by a revert`);
    this.name = 'MoveRevertedError';
  }
}

/** Moves in the control plane's table: `MOVE` / `MOVE#<moveId>`, one record each, kept after they finish (their timings). */
export class MoveStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(record: MoveRecord): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { pk: MOVE_PK, sk: sortKey(record.moveId), ...record },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async get(moveId: string): Promise<MoveRecord | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: MOVE_PK, sk: sortKey(moveId) }, ConsistentRead: true }),
    );
    return Item ? moveRecordSchema.parse(Item) : undefined;
  }

  /** Every move, newest first. */
  async list(): Promise<MoveRecord[]> {
    const moves: MoveRecord[] = [];
    const pages = paginateQuery(
      { client: this.doc },
      { TableName: this.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': MOVE_PK }, ConsistentRead: true },
    );
    for await (const { Items = [] } of pages) moves.push(...Items.map((item) => moveRecordSchema.parse(item)));
    return moves.sort((a, b) => b.createdAt - a.createdAt);
  }

  /**
   * Saves what the engine changed; never the operator's abort request,
   * which only `requestAbort` sets. Refused (MoveRevertedError) once a
   * revert claimed the move unbeknown to the engine that saves.
   */
  async save(record: MoveRecord): Promise<void> {
    const { moveId, abortRequested: _abort, revertedBy: _revert, ...fields } = record;
    const entries = Object.entries(fields).filter(([, value]) => value !== undefined);
    const unset = (['checkpoint', 'fenceAt'] as const).filter((name) => record[name] === undefined);
    const sets = `SET ${entries.map((_, i) => `#f${i} = :f${i}`).join(', ')}`;
    const removes = unset.length ? ` REMOVE ${unset.map((_, i) => `#u${i}`).join(', ')}` : '';
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: MOVE_PK, sk: sortKey(moveId) },
          UpdateExpression: `${sets}${removes}`,
          ExpressionAttributeNames: {
            ...Object.fromEntries(entries.map(([name], i) => [`#f${i}`, name])),
            ...Object.fromEntries(unset.map((name, i) => [`#u${i}`, name])),
          },
          ExpressionAttributeValues: Object.fromEntries(entries.map(([, value], i) => [`:f${i}`, value])),
          ConditionExpression: record.revertedBy === undefined ? 'attribute_exists(pk) AND attribute_not_exists(revertedBy)' : 'attribute_exists(pk)',
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException && record.revertedBy === undefined) throw new MoveRevertedError(moveId);
      throw error;
    }
  }

  /**
   * Records a revert and claims the move it reverts, in one transaction:
   * false when the move is no longer waiting to forget, is forgetting, or
   * another revert claimed it first.
   */
  async createRevert(revert: MoveRecord & { revertOf: string }): Promise<boolean> {
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.tableName,
                Key: { pk: MOVE_PK, sk: sortKey(revert.revertOf) },
                UpdateExpression: 'SET revertedBy = :revert',
                ConditionExpression: '#state = :forget AND attribute_not_exists(revertedBy) AND attribute_not_exists(forgetting)',
                ExpressionAttributeNames: { '#state': 'state' },
                ExpressionAttributeValues: { ':revert': revert.moveId, ':forget': 'forget' },
              },
            },
            {
              Put: {
                TableName: this.tableName,
                Item: { pk: MOVE_PK, sk: sortKey(revert.moveId), ...revert },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof TransactionCanceledException) return false;
      throw error;
    }
  }

  /** Claims the move for forgetting its source's copy; false when a revert claimed it first. */
  async claimForgetting(moveId: string): Promise<boolean> {
    return this.setIf(moveId, 'forgetting', 'attribute_exists(pk) AND attribute_not_exists(revertedBy)');
  }

  /** Asks the move to abort; false when it already flipped or finished (an abort can no longer leave the source as it was). */
  async requestAbort(moveId: string): Promise<boolean> {
    return this.setIf(
      moveId,
      'abortRequested',
      'attribute_exists(pk) AND #state IN (:clone, :catchUp, :fence, :final) AND attribute_not_exists(flippedAt)',
      {
        names: { '#state': 'state' },
        values: { ':clone': 'clone', ':catchUp': 'catch up', ':fence': 'fence', ':final': 'final' },
      },
    );
  }

  /** Sets a flag of a move to true when the condition holds; false when it does not. */
  private async setIf(
    moveId: string,
    flag: 'forgetting' | 'abortRequested',
    condition: string,
    expression: { names?: Record<string, string>; values?: Record<string, unknown> } = {},
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: MOVE_PK, sk: sortKey(moveId) },
          UpdateExpression: `SET ${flag} = :yes`,
          ConditionExpression: condition,
          ...(expression.names && { ExpressionAttributeNames: expression.names }),
          ExpressionAttributeValues: { ':yes': true, ...expression.values },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}

function sortKey(moveId: string): string {
  return `MOVE#${moveId}`;
}
