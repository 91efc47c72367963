import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENTITIES, isValidId, ITEM_SK_PREFIX, itemKey, tenantKey } from '@item-master/shared';
import { itemInputSchema, type Item, type ItemInput, type ItemPatch } from './schema.ts';

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

const ENTITY = ENTITIES.item;

/**
 * Largest page of items, as the ALB counts it: the page's JSON escaped once
 * more inside the Lambda response, which must stay under 1 MB with the
 * headers. A page is cut at this size whatever the count asked for.
 */
export const MAX_PAGE_BYTES = 900 * 1024;

/** Items a list request may read (deleted ones included) before it answers a short page with a cursor. */
const MAX_EVALUATED_PER_ITEM = 10;

/** Attributes that are the store's own, never part of an item as the API shows it. */
const STORE_ATTRIBUTES = ['pk', 'sk', 'entity', 'incarnation', 'deletedAt'] as const;

/** The stored attributes a delete removes: everything the item holds but its key, identity and version. */
const ITEM_FIELDS = [...Object.keys(itemInputSchema.shape), 'createdAt', 'incarnation'];

/**
 * Items of one cell table. Every write bumps `version` atomically in the same
 * request, and writes given an expected version are conditional on it, so
 * concurrent writers never silently overwrite each other.
 *
 * A delete leaves a tombstone (the key, the next version and `deletedAt`),
 * so a key's versions, and so its ETags, never repeat: an item created again
 * goes on from the tombstone's version, and a writer holding a version of
 * the old item cannot overwrite the new one. Each creation also draws a new
 * `incarnation`, which the order saga uses to give stock back only to the
 * item it took it from.
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
    return stored && isLive(stored) ? toItem(stored) : undefined;
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
    return this.update(tenantId, itemId, fields, {
      remove: [...(input.description === undefined ? ['description'] : []), 'deletedAt'],
      expectedVersion,
    });
  }

  /** Applies a partial update to an existing item at the expected version. */
  async patch(tenantId: string, itemId: string, patch: ItemPatch, expectedVersion: number): Promise<Item> {
    const { description, ...rest } = patch;
    const fields: Record<string, unknown> = Object.fromEntries(
      Object.entries(rest).filter(([, value]) => value !== undefined),
    );
    if (typeof description === 'string') fields.description = description;
    const { item } = await this.update(tenantId, itemId, fields, {
      remove: description === null ? ['description'] : [],
      expectedVersion,
      mustExist: true,
    });
    return item;
  }

  /** Deletes an item (leaving its tombstone); at the expected version when one is given. */
  async delete(tenantId: string, itemId: string, expectedVersion?: number): Promise<void> {
    const names: Record<string, string> = { '#version': 'version', '#deletedAt': 'deletedAt', '#updatedAt': 'updatedAt' };
    const removes = ITEM_FIELDS.map((name, index) => {
      names[`#r${index}`] = name;
      return `#r${index}`;
    });
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: itemKey(tenantId, itemId),
          UpdateExpression: `SET #version = #version + :one, #deletedAt = :now, #updatedAt = :now REMOVE ${removes.join(', ')}`,
          ConditionExpression: `attribute_exists(pk) AND attribute_not_exists(#deletedAt)${expectedVersion === undefined ? '' : ' AND #version = :expected'}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: {
            ':one': 1,
            ':now': this.now().toISOString(),
            ...(expectedVersion !== undefined && { ':expected': expectedVersion }),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      throw this.conditionError(error, itemId, expectedVersion);
    }
  }

  /**
   * One page of a tenant's items in id order: at most `limit` items and at
   * most MAX_PAGE_BYTES of them, so that no page breaks the ALB's response
   * limit. Tombstones are skipped; a page may come back short (even empty)
   * with a cursor when many of them lie in its way.
   */
  async list(tenantId: string, limit: number, cursor?: string): Promise<ItemPage> {
    const items: Item[] = [];
    let bytes = 0;
    let evaluated = 0;
    let startAfter = cursor === undefined ? undefined : decodeCursor(cursor);
    for (;;) {
      const output = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': tenantKey(tenantId), ':prefix': ITEM_SK_PREFIX },
          Limit: limit - items.length,
          ...(startAfter !== undefined && { ExclusiveStartKey: itemKey(tenantId, startAfter) }),
        }),
      );
      for (const stored of output.Items ?? []) {
        const itemId = String(stored.sk).slice(ITEM_SK_PREFIX.length);
        evaluated += 1;
        if (isLive(stored)) {
          const item = toItem(stored);
          const size = responseBytes(item);
          // The first item always goes: written by a body of at most 256 KB, it takes at most twice that here.
          if (items.length > 0 && bytes + size > MAX_PAGE_BYTES) return { items, cursor: encodeCursor(startAfter!) };
          items.push(item);
          bytes += size;
        }
        startAfter = itemId;
      }
      if (!output.LastEvaluatedKey) return { items };
      if (items.length >= limit || evaluated >= limit * MAX_EVALUATED_PER_ITEM) return { items, cursor: encodeCursor(startAfter!) };
    }
  }

  private async update(
    tenantId: string,
    itemId: string,
    fields: Record<string, unknown>,
    options: { remove: string[]; expectedVersion?: number; mustExist?: boolean },
  ): Promise<{ item: Item; created: boolean }> {
    const names: Record<string, string> = {
      '#version': 'version',
      '#createdAt': 'createdAt',
      '#updatedAt': 'updatedAt',
      '#incarnation': 'incarnation',
    };
    const now = this.now().toISOString();
    const incarnation = randomUUID();
    const values: Record<string, unknown> = { ':now': now, ':zero': 0, ':one': 1, ':incarnation': incarnation };
    // A tombstone keeps the version and has no createdAt or incarnation: creating over it goes on from there.
    const sets = [
      '#version = if_not_exists(#version, :zero) + :one',
      '#createdAt = if_not_exists(#createdAt, :now)',
      '#incarnation = if_not_exists(#incarnation, :incarnation)',
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
    if (options.mustExist || options.expectedVersion !== undefined) {
      names['#deletedAt'] = 'deletedAt';
      conditions.push('attribute_exists(pk) AND attribute_not_exists(#deletedAt)');
    }
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
      const stored = output.Attributes ?? {};
      // Created by this request: its incarnation won, and (for items older than incarnations) its time too.
      return { item: toItem(stored), created: stored.incarnation === incarnation && stored.createdAt === now };
    } catch (error) {
      throw this.conditionError(error, itemId, options.expectedVersion);
    }
  }

  /** Turns a failed condition into what it means: the item is gone, or at another version. */
  private conditionError(error: unknown, itemId: string, expectedVersion: number | undefined): unknown {
    if (!(error instanceof ConditionalCheckFailedException)) return error;
    const actual = error.Item?.version?.N;
    if (actual === undefined || error.Item?.deletedAt !== undefined) return new ItemNotFoundError(itemId);
    return new VersionConflictError(itemId, expectedVersion ?? 0, Number(actual));
  }
}

function isLive(stored: Record<string, unknown>): boolean {
  return stored.deletedAt === undefined;
}

function toItem(stored: Record<string, unknown>): Item {
  const item: Record<string, unknown> = { ...stored };
  for (const name of STORE_ATTRIBUTES) delete item[name];
  return item as unknown as Item;
}

/** An item's share of a list response as the ALB receives it: JSON, escaped again inside the Lambda response. */
function responseBytes(item: Item): number {
  return Buffer.byteLength(JSON.stringify(JSON.stringify(item)), 'utf8') + 1;
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
