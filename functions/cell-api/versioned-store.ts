import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { COPY_MARKER, entityKey, isValidId, tenantKey, type EntityKind } from '@item-master/shared';

export class NotFoundError extends Error {
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} does not exist`);
    this.name = 'NotFoundError';
  }
}

export class VersionConflictError extends Error {
  constructor(
    readonly entity: string,
    readonly id: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`${entity} ${id} is at version ${actual}, not ${expected}`);
    this.name = 'VersionConflictError';
  }
}

export class InvalidCursorError extends Error {
  constructor() {
    super('the cursor is not one this API returned');
    this.name = 'InvalidCursorError';
  }
}

/** What every versioned record carries besides its own fields. */
export interface Versioned {
  tenantId: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface Page<T> {
  items: T[];
  /** Present when there may be more: pass it back to get the next page. */
  cursor?: string;
}

/** A versioned entity: its keys and the fields its writes own. */
export interface VersionedEntity extends EntityKind {
  /**
   * The entity's own fields, as its input schema lists them. A put removes
   * those it is not given; a delete removes them all.
   */
  readonly fields: readonly string[];
}

/**
 * Largest page, as the ALB counts it: the page's JSON escaped once more
 * inside the Lambda response, which must stay under 1 MB with the headers. A
 * page is cut at this size whatever the count asked for.
 */
export const MAX_PAGE_BYTES = 900 * 1024;

/** Records a list request may read (deleted ones included) per record asked for, before it answers a short page with a cursor. */
const MAX_EVALUATED_PER_RECORD = 10;

/** Attributes that are the store's own, never part of a record as the API shows it. */
const STORE_ATTRIBUTES = ['pk', 'sk', 'entity', 'incarnation', 'deletedAt', COPY_MARKER] as const;

/**
 * Records of one entity in a cell table, each kept under
 * `TENANT#<tenantId>` / `<prefix><id>`. Every write bumps `version`
 * atomically in the same request, and writes given an expected version are
 * conditional on it, so concurrent writers never silently overwrite each
 * other.
 *
 * A delete leaves a tombstone (the key, the next version and `deletedAt`),
 * so a key's versions, and so its ETags, never repeat: a record created
 * again goes on from the tombstone's version, and a writer holding a version
 * of the old record cannot overwrite the new one. Each creation also draws a
 * new `incarnation`, so that something holding on to a record (the order
 * saga's stock) can tell the record it took from one created since.
 */
export class VersionedStore<T extends Versioned> {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    readonly entity: VersionedEntity,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get(tenantId: string, id: string): Promise<T | undefined> {
    const { Item: stored } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: this.key(tenantId, id), ConsistentRead: true }));
    return stored && isLive(stored) ? this.toRecord(stored) : undefined;
  }

  /**
   * Creates or replaces a record with the fields given (the entity's other
   * fields are removed); `created` tells which. At the expected version when
   * one is given.
   */
  async put(tenantId: string, id: string, input: object, expectedVersion?: number): Promise<{ record: T; created: boolean }> {
    const given = Object.entries(input).filter(([, value]) => value !== undefined);
    const named = new Set(given.map(([name]) => name));
    return this.update(tenantId, id, Object.fromEntries(given), {
      remove: [...this.entity.fields.filter((name) => !named.has(name)), 'deletedAt'],
      expectedVersion,
    });
  }

  /**
   * Changes some fields of an existing record at the expected version: a
   * field given replaces the stored one, `null` removes it, `undefined`
   * leaves it.
   */
  async patch(tenantId: string, id: string, patch: object, expectedVersion: number): Promise<T> {
    const entries = Object.entries(patch).filter(([, value]) => value !== undefined);
    const { record } = await this.update(tenantId, id, Object.fromEntries(entries.filter(([, value]) => value !== null)), {
      remove: entries.filter(([, value]) => value === null).map(([name]) => name),
      expectedVersion,
      mustExist: true,
    });
    return record;
  }

  /** Deletes a record (leaving its tombstone); at the expected version when one is given. */
  async delete(tenantId: string, id: string, expectedVersion?: number): Promise<void> {
    const names: Record<string, string> = { '#version': 'version', '#deletedAt': 'deletedAt', '#updatedAt': 'updatedAt' };
    const removes = [...this.entity.fields, 'createdAt', 'incarnation', COPY_MARKER].map((name, index) => {
      names[`#r${index}`] = name;
      return `#r${index}`;
    });
    const live = 'attribute_exists(pk) AND attribute_not_exists(#deletedAt)';
    const atVersion = expectedVersion === undefined ? '' : ' AND #version = :expected';
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(tenantId, id),
          UpdateExpression: `SET #version = #version + :one, #deletedAt = :now, #updatedAt = :now REMOVE ${removes.join(', ')}`,
          ConditionExpression: `${live}${atVersion}`,
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
      throw this.conditionError(error, id, expectedVersion);
    }
  }

  /**
   * One page of a tenant's records in id order: at most `limit` of them and
   * at most MAX_PAGE_BYTES, so that no page breaks the ALB's response limit.
   * Tombstones are skipped; a page may come back short (even empty) with a
   * cursor when many of them lie in its way.
   */
  async list(tenantId: string, limit: number, cursor?: string): Promise<Page<T>> {
    const { skPrefix } = this.entity;
    const records: T[] = [];
    let bytes = 0;
    let evaluated = 0;
    let startAfter = cursor === undefined ? undefined : this.decodeCursor(cursor);
    for (;;) {
      const output = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': tenantKey(tenantId), ':prefix': skPrefix },
          Limit: limit - records.length,
          ...(startAfter !== undefined && { ExclusiveStartKey: this.key(tenantId, startAfter) }),
        }),
      );
      for (const stored of output.Items ?? []) {
        const id = String(stored.sk).slice(skPrefix.length);
        evaluated += 1;
        if (isLive(stored)) {
          const record = this.toRecord(stored);
          const size = responseBytes(record);
          // The first record always goes: written by a body of at most 256 KB, it takes at most twice that here.
          if (records.length > 0 && bytes + size > MAX_PAGE_BYTES) return { items: records, cursor: this.encodeCursor(startAfter!) };
          records.push(record);
          bytes += size;
        }
        startAfter = id;
      }
      if (!output.LastEvaluatedKey) return { items: records };
      if (records.length >= limit || evaluated >= limit * MAX_EVALUATED_PER_RECORD) {
        return { items: records, cursor: this.encodeCursor(startAfter!) };
      }
    }
  }

  private key(tenantId: string, id: string) {
    return entityKey(this.entity, tenantId, id);
  }

  private async update(
    tenantId: string,
    id: string,
    fields: Record<string, unknown>,
    options: { remove: string[]; expectedVersion?: number; mustExist?: boolean },
  ): Promise<{ record: T; created: boolean }> {
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
    const identity = { entity: this.entity.name, tenantId, [this.entity.idField]: id };
    for (const [index, [name, value]] of Object.entries({ ...identity, ...fields }).entries()) {
      names[`#f${index}`] = name;
      values[`:f${index}`] = value;
      sets.push(`#f${index} = :f${index}`);
    }
    // A move's copy marker goes with any write (RECORD_WRITE_NAMES).
    const removes = [...options.remove, COPY_MARKER].map((name, index) => {
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
          Key: this.key(tenantId, id),
          UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
          ...(conditions.length && { ConditionExpression: conditions.join(' AND ') }),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const stored = output.Attributes ?? {};
      // Created by this request: its incarnation won, and (for records older than incarnations) its time too.
      return { record: this.toRecord(stored), created: stored.incarnation === incarnation && stored.createdAt === now };
    } catch (error) {
      throw this.conditionError(error, id, options.expectedVersion);
    }
  }

  /** Turns a failed condition into what it means: the record is gone, or at another version. */
  private conditionError(error: unknown, id: string, expectedVersion: number | undefined): unknown {
    if (!(error instanceof ConditionalCheckFailedException)) return error;
    const actual = error.Item?.version?.N;
    if (actual === undefined || error.Item?.deletedAt !== undefined) return new NotFoundError(this.entity.name, id);
    return new VersionConflictError(this.entity.name, id, expectedVersion ?? 0, Number(actual));
  }

  private toRecord(stored: Record<string, unknown>): T {
    const record: Record<string, unknown> = { ...stored };
    for (const name of STORE_ATTRIBUTES) delete record[name];
    return record as T;
  }

  private encodeCursor(id: string): string {
    return Buffer.from(JSON.stringify({ [this.entity.idField]: id }), 'utf8').toString('base64url');
  }

  private decodeCursor(cursor: string): string {
    try {
      const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
      const id = (value as Record<string, unknown>)[this.entity.idField];
      if (typeof id === 'string' && isValidId(id)) return id;
    } catch {
      // fall through
    }
    throw new InvalidCursorError();
  }
}

function isLive(stored: Record<string, unknown>): boolean {
  return stored.deletedAt === undefined;
}

/** A record's share of a list response as the ALB receives it: JSON, escaped again inside the Lambda response. */
function responseBytes(record: unknown): number {
  return Buffer.byteLength(JSON.stringify(JSON.stringify(record)), 'utf8') + 1;
}
