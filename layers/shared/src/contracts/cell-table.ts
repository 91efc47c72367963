/**
 * Single-table key design of a cell table, the one place its prefixes and
 * entity names are spelled: the cell API's stores, the order saga's
 * definition (lib/order-workflow.ts), the change publisher and the control
 * plane's data probe all build keys here. A leaf module: no imports.
 *
 * Everything of one tenant shares a partition key, so a tenant's items and
 * orders are one item collection:
 *
 * | entity    | pk                  | sk                  |
 * | --------- | ------------------- | ------------------- |
 * | item      | `TENANT#<tenantId>` | `ITEM#<itemId>`     |
 * | order     | `TENANT#<tenantId>` | `ORDER#<orderId>`   |
 * | directory | `BUCKET#<bucket>`   | `TENANT#<tenantId>` |
 * | ownership | `CELL`              | `OWNERSHIP`         |
 * | move      | `CELL`              | `MOVE#<moveId>`     |
 *
 * The last three are the cell's own: the tenants that wrote to it, by bucket
 * (so the tenants of a bucket are one Query), the map version it serves by
 * (see OWNERSHIP_KEY) and the moves it takes part in (see CellMoveMarker);
 * the last two are one Query of `CELL`. No tenant's key starts with
 * `BUCKET#` or is `CELL`.
 *
 * - Reads and writes of one item are single-key operations; a tenant's items
 *   page in `sk` order with one Query (`begins_with(sk, "ITEM#")`).
 * - An order and the stock it reserves sit in the same collection, so the
 *   order saga's transaction never leaves the tenant (or the cell).
 * - The table has no local secondary index, so an item collection is not
 *   capped at 10 GB, and DynamoDB splits a hot collection across partitions by
 *   sort-key range. The per-item ceiling (1,000 WCU) remains: a single very
 *   hot item is a design limit, not a partition one.
 * - Every record carries `entity`, which is how a reader of the table's
 *   stream tells what changed.
 */

export const TENANT_PREFIX = 'TENANT#';

/**
 * One kind of record of a cell table: how its sort keys start, what its
 * `entity` attribute says, which attribute holds its id and which path
 * segment serves it. Adding an entity starts with one of these.
 */
export interface EntityKind {
  /** The `entity` attribute of its records (and the noun of its error messages). */
  readonly name: string;
  /** How its sort keys start, `ITEM#` for `ITEM#<itemId>`. Unique in the table. */
  readonly skPrefix: `${string}#`;
  /** The attribute and path parameter that hold its id, `itemId`. */
  readonly idField: string;
  /** The path segment of its collection, `items` for `/tenants/{tenantId}/items`. */
  readonly collection: string;
}

export const ITEM = { name: 'item', skPrefix: 'ITEM#', idField: 'itemId', collection: 'items' } as const satisfies EntityKind;
export const ORDER = { name: 'order', skPrefix: 'ORDER#', idField: 'orderId', collection: 'orders' } as const satisfies EntityKind;

export const ITEM_SK_PREFIX = ITEM.skPrefix;
export const ORDER_SK_PREFIX = ORDER.skPrefix;

/** The `entity` attribute of each kind of record. */
export const ENTITIES = { item: ITEM.name, order: ORDER.name } as const;

export function tenantKey(tenantId: string): string {
  return `${TENANT_PREFIX}${tenantId}`;
}

/** The key of one record of a kind. */
export function entityKey(kind: Pick<EntityKind, 'skPrefix'>, tenantId: string, id: string): { pk: string; sk: string } {
  return { pk: tenantKey(tenantId), sk: `${kind.skPrefix}${id}` };
}

export function itemKey(tenantId: string, itemId: string): { pk: string; sk: string } {
  return entityKey(ITEM, tenantId, itemId);
}

export function orderKey(tenantId: string, orderId: string): { pk: string; sk: string } {
  return entityKey(ORDER, tenantId, orderId);
}

/**
 * The cell's record of which tenants it serves: a copy of a bucket map
 * version (its number, the map encoded as the control plane stores it, the
 * pins), written into the cell's own table by the control plane's operations
 * before the map itself changes. A cell refuses a tenant the record gives to
 * another cell. No record: the cell serves every tenant routed to it (a
 * deployment whose map never changed since its seed).
 */
export const OWNERSHIP_KEY = { pk: 'CELL', sk: 'OWNERSHIP' } as const;

/**
 * How long a cell API instance trusts the ownership record it read. The
 * operations wait longer than this between fencing the cells and changing the
 * map, so that no instance still serves by the record before.
 */
export const OWNERSHIP_LEASE_MS = 1_000;

/** The cell API function's timeout: a request that passed the ownership check may still write until then. */
export const CELL_API_TIMEOUT_SECONDS = 10;

/**
 * How long a change of the map waits between fencing the cells and relying
 * on the fence: an instance may hold the record before for a lease, and a
 * request it let through may write until the function's timeout, plus a
 * second for a write DynamoDB received just before it.
 */
export const FENCE_WAIT_MS = OWNERSHIP_LEASE_MS + CELL_API_TIMEOUT_SECONDS * 1_000 + 1_000;

export interface CellOwnershipRecord {
  /** The map version it copies. */
  readonly epoch: number;
  readonly cells: readonly string[];
  readonly buckets: string;
  readonly overrides: Readonly<Record<string, string>>;
  /** The operation that wrote it, so that undoing a fence undoes only its own. */
  readonly writtenBy?: string;
  /**
   * When it was written (ms since the epoch): a fence ahead of the map and older than twice FENCE_WAIT_MS was left by an operation that
   * died, and may be taken over.
   */
  readonly writtenAt?: number;
}

/**
 * The cell's tenant directory: one record per tenant that has written to the
 * cell, under its bucket, so that the tenants of a bucket are one Query, never
 * a scan of the table. The cell API writes a tenant's entry before the
 * tenant's first write it serves (once per instance), so every tenant with
 * data in the cell has one; an entry may outlive the tenant's data.
 *
 * | pk            | sk                  |
 * | ------------- | ------------------- |
 * | `BUCKET#<n>`  | `TENANT#<tenantId>` |
 */
export const DIRECTORY_PREFIX = 'BUCKET#';
export const DIRECTORY_ENTITY = 'directory';

export function directoryKey(bucket: number, tenantId: string): { pk: string; sk: string } {
  return { pk: `${DIRECTORY_PREFIX}${bucket}`, sk: tenantKey(tenantId) };
}

/** The partition of the cell's own records: its ownership record and its move markers, read together. */
export const CELL_RECORDS_PK = OWNERSHIP_KEY.pk;
export const MOVE_SK_PREFIX = 'MOVE#';

export function moveMarkerKey(moveId: string): { pk: string; sk: string } {
  return { pk: CELL_RECORDS_PK, sk: `${MOVE_SK_PREFIX}${moveId}` };
}

/**
 * A move this cell takes part in, written into its table by the move for
 * as long as it runs. The source serves the moving tenants as usual until
 * `fenceAt`, then refuses their writes (503) and still serves their reads;
 * the target, asked for a moving tenant it does not own yet, reads its
 * ownership record again at once instead of waiting out its lease, so that
 * it serves them as soon as the map has flipped. A cell journals its
 * writes of the tenants while it serves them under a marker: the source
 * until the flip, the target from the flip until forget (the move copies
 * them back, so that the source stays current for a revert).
 */
export interface CellMoveMarker {
  readonly moveId: string;
  readonly role: 'source' | 'target';
  /** Buckets whose tenants move (those the map routes by bucket; pinned tenants stay). */
  readonly buckets: readonly number[];
  /** Tenants that move by themselves (`move tenant`). */
  readonly tenants: readonly string[];
  /**
   * From when (ms since the epoch) the source refuses the moving tenants'
   * writes. Written at least WRITE_WINDOW_MS ahead, so that every instance
   * has read it, or can no longer write by a record read before it, by then.
   */
  readonly fenceAt?: number;
}

/**
 * How long after the ownership read it was judged by a cell API write may
 * still be sent: a request that passed the check under a record read before
 * a fence was written cannot write after this much time. Longer than the
 * lease, so that a request never waits for the deadline under normal load.
 */
export const WRITE_WINDOW_MS = OWNERSHIP_LEASE_MS + 4_000;

/**
 * A write sent before its deadline is acknowledged only if its answer came
 * back within this much after it: every acknowledged write of a fenced
 * tenant was applied by `fenceAt + WRITE_SETTLE_MS`, which is when a move's
 * final catch-up starts reading.
 */
export const WRITE_SETTLE_MS = 250;

/**
 * The attribute a move writes on each record it copies: the record's
 * `updatedAt` at the time. A record whose `updatedAt` still equals it is a
 * copy, not a change, and the target's publisher tells nobody; the next real
 * write changes `updatedAt`, and is published as usual.
 */
export const COPY_MARKER = 'copyOf';

/**
 * Every write of a record other than a move's copy sets `updatedAt` and
 * removes the copy marker (`SET #updatedAt = … REMOVE #copy`): a marker left
 * behind that still equals `updatedAt` would hide the change from subscribers.
 * These are the names such an expression uses.
 */
export const RECORD_WRITE_NAMES = { '#updatedAt': 'updatedAt', '#copy': COPY_MARKER } as const;

/**
 * A move's change journal, in the table of the cell that serves the moving
 * tenants (the source until the flip, the target until forget): which of
 * their records were written, and when. The cell API writes an entry before
 * each write of a tenant it serves under a move marker; a move's catch-up
 * (and, after the flip, its copying back) reads the journal instead of the whole tenant,
 * so what it reads inside the fence follows the writes, not the tenant's
 * size. Entries are spread over JOURNAL_SHARDS partitions by tenant, so
 * that one move's journal takes the writes of many busy tenants.
 */
export const JOURNAL_PREFIX = 'JOURNAL#';
export const JOURNAL_ENTITY = 'journal';
export const JOURNAL_SHARDS = 8;

/** A journal's partition key: its move and shard. */
export function journalPartition(moveId: string, shard: number): string {
  return `${JOURNAL_PREFIX}${moveId}#${shard}`;
}

/** The journal entry of one record of a moving tenant: sort key `<tenantId>#<record sk>` (ids have no `#`). */
export function journalKey(moveId: string, tenantId: string, recordSk: string): { pk: string; sk: string } {
  let hash = 0;
  for (const char of tenantId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return { pk: journalPartition(moveId, hash % JOURNAL_SHARDS), sk: `${tenantId}#${recordSk}` };
}

/** A journal entry as stored: `at` is when its write was about to be sent (ms since the epoch). */
export interface JournalEntry {
  readonly tenantId: string;
  readonly recordSk: string;
  readonly at: number;
}

/**
 * How long after its journal entry a write has surely been applied, or will
 * never be acknowledged: its ownership answer lets it be sent for at most
 * WRITE_WINDOW_MS, and taken as acknowledged WRITE_SETTLE_MS after that. A
 * copy made later than this after an entry has read that entry's write.
 */
export const JOURNAL_SETTLE_MS = WRITE_WINDOW_MS + WRITE_SETTLE_MS;
