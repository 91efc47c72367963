import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  paginateQuery,
  paginateScan,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import {
  COPY_MARKER,
  DIRECTORY_ENTITY,
  FENCE_WAIT_MS,
  directoryKey,
  JOURNAL_ENTITY,
  JOURNAL_SHARDS,
  journalKey,
  journalPartition,
  moveMarkerKey,
  ORDER_SK_PREFIX,
  OWNERSHIP_KEY,
  TENANT_PREFIX,
  tenantKey,
  type CellMoveMarker,
  type CellOwnershipRecord,
  type JournalEntry,
} from '../layers/shared/src/contracts/cell-table.ts';
import { RUNNING_ORDER_STATUSES } from '../layers/shared/src/contracts/order-saga.ts';
import { bucketOf } from '../routing/routing.ts';
import type { CellRecord } from '../routing/records.ts';

type Item = Record<string, unknown>;

/** DynamoDB's limit on one BatchWriteItem. */
const BATCH = 25;
/** DynamoDB's limit on one BatchGetItem. */
const BATCH_GET = 100;
/** BatchWriteItem calls in flight at once: the copy's speed, against the load it puts on a table that serves. */
const BATCHES_AT_ONCE = 8;
/** Rounds of UnprocessedItems a batch may leave before the copy gives up (the step is retried from its checkpoint). */
const MAX_BATCH_ROUNDS = 8;

/** A page of a tenant's records, and where the next one starts. */
export interface TenantPage {
  readonly items: Item[];
  readonly lastKey?: Item;
}

/** What a reconciling pass did to the target: records written and removed, and where to go on when it stopped at its limit. */
export interface Reconciled {
  readonly written: number;
  readonly removed: number;
  /** The sort keys of the orders it read in the source whose saga was still running (the saga writes them on, without the cell API). */
  readonly runningOrders: string[];
  readonly lastKey?: Item;
}

/** A tenant's records in one cell, summed up: their number and a hash of all of them in key order. */
export interface TenantDigest {
  readonly records: number;
  readonly checksum: string;
}

/**
 * What a move does in the cells' tables: pages of a tenant's records,
 * copies marked as copies, a reconciling pass (source against target, in
 * key order, neither side held in memory), digests, the move markers and
 * the ownership records; and what the cell operations (pin, fence) do
 * there: the ownership record, the directory, whether a tenant has data.
 * Every write here is idempotent, so a step that died half-way is simply
 * run again.
 */
export class CellData {
  constructor(protected readonly doc: DynamoDBDocumentClient) {}

  /** The tenants the cell's directory records under a bucket (a Query per bucket, never a scan). */
  async tenantsIn(cell: CellRecord, bucket: number): Promise<string[]> {
    const tenants: string[] = [];
    const { pk } = directoryKey(bucket, '');
    for await (const page of paginateQuery(
      { client: this.doc },
      { TableName: cell.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk }, ProjectionExpression: 'tenantId' },
    )) {
      for (const item of page.Items ?? []) tenants.push(String(item.tenantId));
    }
    return tenants;
  }

  /**
   * Writes a map version's copy as the cell's ownership record, if the record
   * there is as expected: none, one of an earlier version, or one of the
   * same version left by an operation that died (older than twice
   * FENCE_WAIT_MS) when `replacing` is undefined; the one the operation
   * `replacing` wrote (undoing its fence) otherwise. False when the record
   * was not as expected.
   */
  async writeOwnership(cell: CellRecord, record: CellOwnershipRecord, replacing?: string): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: cell.tableName,
          Item: { ...OWNERSHIP_KEY, ...record },
          ConditionExpression:
            replacing === undefined
              ? 'attribute_not_exists(epoch) OR epoch < :epoch OR (epoch = :epoch AND writtenAt < :abandoned)'
              : 'writtenBy = :replacing',
          ExpressionAttributeValues:
            replacing === undefined ? { ':epoch': record.epoch, ':abandoned': Date.now() - 2 * FENCE_WAIT_MS } : { ':replacing': replacing },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Whether a cell's table holds anything of a tenant (one key of its item collection). */
  async hasData(cell: CellRecord, tenantId: string): Promise<boolean> {
    const { Items } = await this.doc.send(
      new QueryCommand({
        TableName: cell.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': tenantKey(tenantId) },
        ProjectionExpression: 'pk',
        Limit: 1,
      }),
    );
    return (Items?.length ?? 0) > 0;
  }

  /**
   * One page of a tenant's records (its item collection), in key order:
   * after `startKey` (which need not be a record's key) and up to the sort
   * key `upTo` (inclusive), when given.
   */
  async page(cell: CellRecord, tenantId: string, limit: number, startKey?: Item, upTo?: string): Promise<TenantPage> {
    const { Items = [], LastEvaluatedKey } = await this.doc.send(
      new QueryCommand({
        TableName: cell.tableName,
        KeyConditionExpression: upTo === undefined ? 'pk = :pk' : 'pk = :pk AND sk <= :upTo',
        ExpressionAttributeValues: { ':pk': tenantKey(tenantId), ...(upTo !== undefined && { ':upTo': upTo }) },
        ConsistentRead: true,
        Limit: limit,
        ...(startKey && { ExclusiveStartKey: startKey }),
      }),
    );
    return { items: Items, ...(LastEvaluatedKey && { lastKey: LastEvaluatedKey }) };
  }

  /** The highest sort key of a tenant's records in a cell, up to `upTo` when given: where a range of them ends. */
  async lastSortKey(cell: CellRecord, tenantId: string, upTo?: string): Promise<string | undefined> {
    const { Items = [] } = await this.doc.send(
      new QueryCommand({
        TableName: cell.tableName,
        KeyConditionExpression: upTo === undefined ? 'pk = :pk' : 'pk = :pk AND sk <= :upTo',
        ExpressionAttributeValues: { ':pk': tenantKey(tenantId), ...(upTo !== undefined && { ':upTo': upTo }) },
        ProjectionExpression: 'sk',
        ScanIndexForward: false,
        ConsistentRead: true,
        Limit: 1,
      }),
    );
    return Items[0] ? String(Items[0].sk) : undefined;
  }

  /** Writes copies of records into a cell, each marked as a copy (COPY_MARKER), so that its publisher tells nobody. */
  async putCopies(cell: CellRecord, items: readonly Item[]): Promise<void> {
    await this.batch(
      cell,
      items.map((item) => ({ PutRequest: { Item: copyOf(item) } })),
    );
  }

  async remove(cell: CellRecord, keys: ReadonlyArray<{ pk: unknown; sk: unknown }>): Promise<void> {
    await this.batch(
      cell,
      keys.map(({ pk, sk }) => ({ DeleteRequest: { Key: { pk, sk } } })),
    );
  }

  /**
   * Makes the target's copy of a tenant equal to the source's: records
   * missing or different are written, records the source no longer has are
   * removed. Both sides are read in key order, a page at a time, from after
   * `startKey` up to the sort key `upTo` (inclusive, when given); with a `limit`, it stops after that many records and says
   * where to go on (`lastKey`: every key up to it is done on both sides).
   */
  async reconcile(
    source: CellRecord,
    target: CellRecord,
    tenantId: string,
    options: { startKey?: Item; upTo?: string; limit?: number } = {},
  ): Promise<Reconciled> {
    const puts: Item[] = [];
    const removes: Item[] = [];
    let written = 0;
    let removed = 0;
    const flush = async (force: boolean) => {
      if (puts.length >= BATCH || (force && puts.length)) {
        written += puts.length;
        await this.putCopies(target, puts.splice(0));
      }
      if (removes.length >= BATCH || (force && removes.length)) {
        removed += removes.length;
        await this.remove(target, removes.splice(0) as Array<{ pk: unknown; sk: unknown }>);
      }
    };
    const pageSize = Math.min(options.limit ?? 1_000, 1_000);
    const from = this.records(source, tenantId, options.startKey, pageSize, options.upTo)[Symbol.asyncIterator]();
    const to = this.records(target, tenantId, options.startKey, pageSize, options.upTo)[Symbol.asyncIterator]();
    let a = await from.next();
    let b = await to.next();
    let seen = 0;
    let lastKey: Item | undefined;
    const runningOrders: string[] = [];
    while (!a.done || !b.done) {
      if (options.limit !== undefined && seen >= options.limit) break;
      const order = a.done ? 1 : b.done ? -1 : compareKeys(a.value.sk, b.value.sk);
      const key = { pk: tenantKey(tenantId), sk: (order > 0 ? b.value : a.value)!.sk };
      if (order <= 0 && String(a.value!.sk).startsWith(ORDER_SK_PREFIX) && RUNNING_ORDER_STATUSES.includes(String(a.value!.status)))
        runningOrders.push(String(a.value!.sk));
      if (order < 0) {
        puts.push(a.value as Item);
        a = await from.next();
      } else if (order > 0) {
        removes.push(b.value as Item);
        b = await to.next();
      } else {
        if (canonical(a.value) !== canonical(b.value)) puts.push(a.value as Item);
        a = await from.next();
        b = await to.next();
      }
      // Every key up to this one is done on both sides: the merge consumes both in key order.
      lastKey = key;
      seen += 1;
      await flush(false);
    }
    await flush(true);
    const more = !a.done || !b.done;
    return { written, removed, runningOrders, ...(more && lastKey && { lastKey }) };
  }

  /** Every entry of a move's change journal in a cell (all its shards), oldest change first. */
  async journal(cell: CellRecord, moveId: string): Promise<JournalEntry[]> {
    const shards = await Promise.all(
      Array.from({ length: JOURNAL_SHARDS }, async (_, shard) => {
        const entries: JournalEntry[] = [];
        for await (const page of paginateQuery(
          { client: this.doc, pageSize: 1_000 },
          {
            TableName: cell.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': journalPartition(moveId, shard) },
            ConsistentRead: true,
          },
        )) {
          for (const item of page.Items ?? [])
            entries.push({ tenantId: String(item.tenantId), recordSk: String(item.recordSk), at: Number(item.at) });
        }
        return entries;
      }),
    );
    return shards.flat().sort((a, b) => a.at - b.at);
  }

  /** Adds journal entries (a move's own: the orders whose saga runs on when the catch-up meets them). */
  async addToJournal(cell: CellRecord, moveId: string, entries: readonly JournalEntry[]): Promise<void> {
    await this.batch(
      cell,
      entries.map((entry) => ({ PutRequest: { Item: { ...journalKey(moveId, entry.tenantId, entry.recordSk), entity: JOURNAL_ENTITY, ...entry } } })),
    );
  }

  /** Removes journal entries whose records are copied, each only if no newer write journaled it again meanwhile. */
  async dropFromJournal(cell: CellRecord, moveId: string, entries: readonly JournalEntry[]): Promise<void> {
    for (let start = 0; start < entries.length; start += BATCHES_AT_ONCE) {
      await Promise.all(
        entries.slice(start, start + BATCHES_AT_ONCE).map(async (entry) => {
          try {
            await this.doc.send(
              new DeleteCommand({
                TableName: cell.tableName,
                Key: journalKey(moveId, entry.tenantId, entry.recordSk),
                ConditionExpression: '#at = :at',
                ExpressionAttributeNames: { '#at': 'at' },
                ExpressionAttributeValues: { ':at': entry.at },
              }),
            );
          } catch (error) {
            if (!(error instanceof ConditionalCheckFailedException)) throw error;
          }
        }),
      );
    }
  }

  /** Removes a move's whole journal from a cell. */
  async clearJournal(cell: CellRecord, moveId: string): Promise<void> {
    const entries = await this.journal(cell, moveId);
    await this.remove(
      cell,
      entries.map((entry) => journalKey(moveId, entry.tenantId, entry.recordSk)),
    );
  }

  /**
   * Makes the target's records of a tenant equal to the source's, for these
   * keys only: each is read from the source (consistently) and written as a
   * copy, or removed from the target where the source has none. Returns the
   * source's records as read.
   */
  async copyKeys(
    source: CellRecord,
    target: CellRecord,
    tenantId: string,
    sks: readonly string[],
  ): Promise<{ written: number; removed: number; records: Item[] }> {
    const records = await this.read(source, tenantId, sks);
    const found = new Set(records.map((record) => String(record.sk)));
    const gone = sks.filter((sk) => !found.has(sk)).map((sk) => ({ pk: tenantKey(tenantId), sk }));
    await Promise.all([this.putCopies(target, records), this.remove(target, gone)]);
    return { written: records.length, removed: gone.length, records };
  }

  /** The keys among `sks` whose records differ between the cells (one missing on one side counts). */
  async differingKeys(
    source: CellRecord,
    target: CellRecord,
    tenantId: string,
    sks: readonly string[],
  ): Promise<{ compared: number; differing: string[]; checksum: string }> {
    const [from, to] = await Promise.all([this.read(source, tenantId, sks), this.read(target, tenantId, sks)]);
    const text = (records: Item[]) => new Map(records.map((record) => [String(record.sk), canonical(record)]));
    const a = text(from);
    const b = text(to);
    const hash = createHash('sha256');
    for (const sk of [...sks].sort(compareKeys)) hash.update(a.get(sk) ?? '-').update('\n');
    return { compared: sks.length, differing: sks.filter((sk) => a.get(sk) !== b.get(sk)), checksum: hash.digest('hex') };
  }

  /** The number of a tenant's records in a cell, and a hash of all of them in key order (copy markers aside). */
  async digest(cell: CellRecord, tenantId: string): Promise<TenantDigest> {
    const hash = createHash('sha256');
    let records = 0;
    for await (const item of this.records(cell, tenantId)) {
      hash.update(canonical(item)).update('\n');
      records += 1;
    }
    return { records, checksum: hash.digest('hex') };
  }

  /** Whether a cell holds any record of a tenant. */
  async holds(cell: CellRecord, tenantId: string): Promise<boolean> {
    const { items } = await this.page(cell, tenantId, 1);
    return items.length > 0;
  }

  /** The tenant's directory entry in one cell, if it has one. */
  async directoryEntry(cell: CellRecord, bucket: number, tenantId: string): Promise<Item | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: cell.tableName, Key: directoryKey(bucket, tenantId), ConsistentRead: true }));
    return Item;
  }

  /** Copies a directory entry (unless the cell has it already). */
  async putDirectoryEntry(cell: CellRecord, entry: Item): Promise<void> {
    try {
      await this.doc.send(new PutCommand({ TableName: cell.tableName, Item: entry, ConditionExpression: 'attribute_not_exists(pk)' }));
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async removeDirectoryEntry(cell: CellRecord, bucket: number, tenantId: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: cell.tableName, Key: directoryKey(bucket, tenantId) }));
  }

  async putMarker(cell: CellRecord, marker: CellMoveMarker): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: cell.tableName,
        Item: { ...moveMarkerKey(marker.moveId), ...marker, buckets: [...marker.buckets], tenants: [...marker.tenants] },
      }),
    );
  }

  async removeMarker(cell: CellRecord, moveId: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: cell.tableName, Key: moveMarkerKey(moveId) }));
  }

  /**
   * Writes a map version's copy as the cell's ownership record on behalf of
   * a move: over none, an earlier version, or the move's own (a flip run
   * again after it died). False when another change holds a version as new.
   */
  async claimOwnership(cell: CellRecord, record: CellOwnershipRecord & { writtenBy: string }): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: cell.tableName,
          Item: { ...OWNERSHIP_KEY, ...record },
          ConditionExpression: 'attribute_not_exists(epoch) OR epoch < :epoch OR writtenBy = :by',
          ExpressionAttributeValues: { ':epoch': record.epoch, ':by': record.writtenBy },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Records every tenant that has data in the cell in its directory: one
   * scan of the table (keys only), for a cell whose tenants wrote before the
   * directory existed. Entries already there are left as they are.
   */
  async backfillDirectory(
    cell: CellRecord,
    progress?: (scanned: number, tenants: number) => void,
  ): Promise<{ scanned: number; tenants: number; added: number }> {
    const seen = new Set<string>();
    let scanned = 0;
    let added = 0;
    for await (const page of paginateScan(
      { client: this.doc, pageSize: 1_000 },
      {
        TableName: cell.tableName,
        ProjectionExpression: 'pk',
        FilterExpression: 'begins_with(pk, :tenant)',
        ExpressionAttributeValues: { ':tenant': TENANT_PREFIX },
      },
    )) {
      scanned += page.ScannedCount ?? 0;
      for (const item of page.Items ?? []) {
        const tenantId = String(item.pk).slice(TENANT_PREFIX.length);
        if (seen.has(tenantId)) continue;
        seen.add(tenantId);
        const bucket = bucketOf(tenantId);
        try {
          await this.doc.send(
            new PutCommand({
              TableName: cell.tableName,
              Item: { ...directoryKey(bucket, tenantId), entity: DIRECTORY_ENTITY, tenantId, bucket, recordedAt: new Date().toISOString() },
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          );
          added += 1;
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }
      }
      progress?.(scanned, seen.size);
    }
    return { scanned, tenants: seen.size, added };
  }

  /** Every record of a tenant in a cell (after `from`, when given), in key order, a page at a time. */
  private async *records(cell: CellRecord, tenantId: string, from?: Item, pageSize = 1_000, upTo?: string): AsyncGenerator<Item> {
    let startKey: Item | undefined = from;
    do {
      const page = await this.page(cell, tenantId, pageSize, startKey, upTo);
      yield* page.items;
      startKey = page.lastKey;
    } while (startKey);
  }

  /** A tenant's records of the given sort keys, read consistently (BatchGetItem, 100 keys a call, a few calls at once). */
  async read(cell: CellRecord, tenantId: string, sks: readonly string[]): Promise<Item[]> {
    const found: Item[] = [];
    const chunks: string[][] = [];
    for (let start = 0; start < sks.length; start += BATCH_GET) chunks.push(sks.slice(start, start + BATCH_GET));
    for (let start = 0; start < chunks.length; start += BATCHES_AT_ONCE) {
      await Promise.all(
        chunks.slice(start, start + BATCHES_AT_ONCE).map(async (chunk) => {
          let keys: Item[] = [...new Set(chunk)].map((sk) => ({ pk: tenantKey(tenantId), sk }));
          for (let round = 0; keys.length > 0; round += 1) {
            if (round === MAX_BATCH_ROUNDS) throw new Error(`DynamoDB left ${keys.length} reads of ${cell.cellId} unprocessed`);
            if (round > 0) await sleep(50 * 2 ** round);
            const { Responses, UnprocessedKeys } = await this.doc.send(
              new BatchGetCommand({ RequestItems: { [cell.tableName]: { Keys: keys, ConsistentRead: true } } }),
            );
            found.push(...(Responses?.[cell.tableName] ?? []));
            keys = (UnprocessedKeys?.[cell.tableName]?.Keys ?? []) as Item[];
          }
        }),
      );
    }
    return found;
  }

  /** BatchWriteItem in batches of 25, a few at a time, each retried until DynamoDB has taken all of it. */
  private async batch(cell: CellRecord, requests: ReadonlyArray<Record<string, unknown>>): Promise<void> {
    const batches: Array<ReadonlyArray<Record<string, unknown>>> = [];
    for (let start = 0; start < requests.length; start += BATCH) batches.push(requests.slice(start, start + BATCH));
    for (let start = 0; start < batches.length; start += BATCHES_AT_ONCE) {
      await Promise.all(batches.slice(start, start + BATCHES_AT_ONCE).map((batch) => this.writeAll(cell, batch)));
    }
  }

  private async writeAll(cell: CellRecord, batch: ReadonlyArray<Record<string, unknown>>): Promise<void> {
    let pending = batch;
    for (let round = 0; pending.length > 0; round += 1) {
      if (round === MAX_BATCH_ROUNDS) throw new Error(`DynamoDB left ${pending.length} writes to ${cell.cellId} unprocessed`);
      if (round > 0) await sleep(50 * 2 ** round);
      const { UnprocessedItems } = await this.doc.send(new BatchWriteCommand({ RequestItems: { [cell.tableName]: pending as never } }));
      pending = (UnprocessedItems?.[cell.tableName] ?? []) as typeof pending;
    }
  }
}

/** A record as a move writes it into the target: unchanged but for the copy marker. */
function copyOf(item: Item): Item {
  const { [COPY_MARKER]: _old, ...record } = item;
  return typeof record.updatedAt === 'string' ? { ...record, [COPY_MARKER]: record.updatedAt } : record;
}

/** Just below and just above the printable ASCII characters that ids and key prefixes are made of. */
const BELOW = 0x1f;
const ABOVE = 0x7f;

/**
 * A sort key strictly between `low` and `high` (low < high), near the
 * middle of the keys between them, or undefined when there is none to
 * give: where a range of a tenant's records splits in two. Keys are ASCII
 * here, so their UTF-8 order (DynamoDB's) is their character order.
 */
export function midSortKey(low: string, high: string): string | undefined {
  let prefix = '';
  // Whether `high` still bounds the key being built: once the key has a character below high's, any continuation is below it.
  let bounded = true;
  for (let i = 0; i < 256; i += 1) {
    const x = i < low.length ? low.charCodeAt(i) : BELOW;
    const y = !bounded ? ABOVE : i < high.length ? high.charCodeAt(i) : BELOW;
    if (x > ABOVE || y > ABOVE) return undefined;
    if (y - x > 1) return prefix + String.fromCharCode(Math.floor((x + y) / 2));
    if (x === BELOW && y === BELOW) return undefined;
    if (y < x) return undefined;
    // Equal here, or next to each other: keep low's character and look further.
    prefix += String.fromCharCode(x);
    if (y === x + 1) bounded = false;
  }
  return undefined;
}

/** DynamoDB orders sort keys by their UTF-8 bytes. */
function compareKeys(a: unknown, b: unknown): number {
  return Buffer.compare(Buffer.from(String(a), 'utf8'), Buffer.from(String(b), 'utf8'));
}

/** A record as text that two equal records share whatever their attribute order (copy markers aside). */
export function canonical(item: unknown): string {
  const { [COPY_MARKER]: _marker, ...record } = item as Item;
  return JSON.stringify(sorted(record));
}

function sorted(value: unknown): unknown {
  if (value instanceof Set) return { $set: [...value].map(String).sort() };
  if (value instanceof Uint8Array) return { $binary: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sorted((value as Item)[key])]),
    );
  }
  return value;
}
