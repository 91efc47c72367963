import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  GetCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { isValidId } from '@item-master/shared';
import { ITEM_SK_PREFIX, itemKey, tenantKey } from './keys.ts';
import type { Item, ItemInput, ItemPatch } from './schema.ts';

export class ItemNotFoundError extends Error {
  constructor(readonly itemId: string) {
    super(`item ${itemId} does not exist`);
    this.name = 'ItemNotFoundError';
  }
}

export class VersionConflictError extends Error {
  constructor(
    readonly itemId: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`item ${itemId} is at version ${actual}, not ${expected}`);
    this.name = 'VersionConflictError';
  }
}

export class InvalidCursorError extends Error {
  constructor() {
    super('the cursor is not one this API returned');
    this.name = 'InvalidCursorError';
  }
}

export interface ItemPage {
  items: Item[];
  /** Present when there may be more items: pass it back to get the next page. */
  cursor?: string;
}

const ENTITY = 'item';

/**
 * Items of one cell table. Every write bumps `version` atomically in the same
 * request, and writes given an expected version are conditional on it, so
 * concurrent writers never silently overwrite each other.
 */
export class ItemStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get(tenantId: string, itemId: string): Promise<Item | undefined> {
    const { Item: stored } = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: itemKey(tenantId, itemId), ConsistentRead: true }),
    );
    return stored ? toItem(stored) : undefined;
  }

  /** Creates or replaces an item; `created` tells which. */
  async put(
    tenantId: string,
    itemId: string,
    input: ItemInput,
    expectedVersion?: number,
  ): Promise<{ item: Item; created: boolean }> {
    const fields: Record<string, unknown> = {
      entity: ENTITY,
      tenantId,
      itemId,
      title: input.title,
      price: input.price,
      stock: input.stock,
      attributes: input.attributes,
      ...(input.description !== undefined && { description: input.description }),
    };
    const item = await this.update(tenantId, itemId, fields, {
      remove: input.description === undefined ? ['description'] : [],
      expectedVersion,
    });
    return { item, created: item.version === 1 };
  }

  /** Applies a partial update to an existing item at the expected version. */
  async patch(tenantId: string, itemId: string, patch: ItemPatch, expectedVersion: number): Promise<Item> {
    const { description, ...rest } = patch;
    const fields: Record<string, unknown> = Object.fromEntries(
      Object.entries(rest).filter(([, value]) => value !== undefined),
    );
    if (typeof description === 'string') fields.description = description;
    return this.update(tenantId, itemId, fields, {
      remove: description === null ? ['description'] : [],
      expectedVersion,
      mustExist: true,
    });
  }

  /** Deletes an item; at the expected version when one is given. */
  async delete(tenantId: string, itemId: string, expectedVersion?: number): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: itemKey(tenantId, itemId),
          ConditionExpression:
            expectedVersion === undefined ? 'attribute_exists(pk)' : 'attribute_exists(pk) AND version = :expected',
          ...(expectedVersion !== undefined && { ExpressionAttributeValues: { ':expected': expectedVersion } }),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      throw this.conditionError(error, itemId, expectedVersion);
    }
  }

  async list(tenantId: string, limit: number, cursor?: string): Promise<ItemPage> {
    const output = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': tenantKey(tenantId), ':prefix': ITEM_SK_PREFIX },
        Limit: limit,
        ...(cursor !== undefined && { ExclusiveStartKey: itemKey(tenantId, decodeCursor(cursor)) }),
      }),
    );
    const items = (output.Items ?? []).map(toItem);
    const last = output.LastEvaluatedKey;
    return last ? { items, cursor: encodeCursor(String(last.sk).slice(ITEM_SK_PREFIX.length)) } : { items };
  }

  private async update(
    tenantId: string,
    itemId: string,
    fields: Record<string, unknown>,
    options: { remove: string[]; expectedVersion?: number; mustExist?: boolean },
  ): Promise<Item> {
    const names: Record<string, string> = { '#version': 'version', '#createdAt': 'createdAt', '#updatedAt': 'updatedAt' };
    const values: Record<string, unknown> = { ':now': this.now().toISOString(), ':zero': 0, ':one': 1 };
    const sets = [
      '#version = if_not_exists(#version, :zero) + :one',
      '#createdAt = if_not_exists(#createdAt, :now)',
      '#updatedAt = :now',
    ];
    for (const [index, [name, value]] of Object.entries(fields).entries()) {
      names[`#f${index}`] = name;
      values[`:f${index}`] = value;
      sets.push(`#f${index} = :f${index}`);
    }
    const removes = options.remove.map((name, index) => {
      names[`#r${index}`] = name;
      return `#r${index}`;
    });
    const conditions: string[] = [];
    if (options.mustExist) conditions.push('attribute_exists(pk)');
    if (options.expectedVersion !== undefined) {
      conditions.push('#version = :expected');
      values[':expected'] = options.expectedVersion;
    }
    try {
      const output = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: itemKey(tenantId, itemId),
          UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
          ...(conditions.length && { ConditionExpression: conditions.join(' AND ') }),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return toItem(output.Attributes ?? {});
    } catch (error) {
      throw this.conditionError(error, itemId, options.expectedVersion);
    }
  }

  /** Turns a failed condition into what it means: the item is gone, or at another version. */
  private conditionError(error: unknown, itemId: string, expectedVersion: number | undefined): unknown {
    if (!(error instanceof ConditionalCheckFailedException)) return error;
    const actual = error.Item?.version?.N;
    if (actual === undefined) return new ItemNotFoundError(itemId);
    return new VersionConflictError(itemId, expectedVersion ?? 0, Number(actual));
  }
}

function toItem(stored: Record<string, unknown>): Item {
  const { pk: _pk, sk: _sk, entity: _entity, ...item } = stored;
  return item as unknown as Item;
}

function encodeCursor(itemId: string): string {
  return Buffer.from(JSON.stringify({ itemId }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const itemId = (value as { itemId?: unknown }).itemId;
    if (typeof itemId === 'string' && isValidId(itemId)) return itemId;
  } catch {
    // fall through
  }
  throw new InvalidCursorError();
}
