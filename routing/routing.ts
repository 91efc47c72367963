import { hash } from 'node:crypto';

/** The number of buckets tenants hash into. It never changes: moving tenants means moving buckets. */
export const BUCKET_COUNT = 16_384;

/** `uint32(first 4 bytes of sha256(tenantId)) mod 16384`. */
export function bucketOf(tenantId: string): number {
  // The one-shot hash: a third faster than createHash().update().digest() per request (docs/design/performance.md).
  return hash('sha256', tenantId, 'buffer').readUInt32BE(0) % BUCKET_COUNT;
}

/** Bucket → cell. Index `b` holds the cell of bucket `b`. */
export type BucketMap = readonly string[];

/** tenantId → cellId, for tenants pinned to a cell whatever their bucket. */
export type Overrides = Readonly<Record<string, string>>;

/**
 * Splits the buckets evenly over the cells in contiguous ranges, in the
 * order given: with 3 cells, buckets 0..5461 go to the first, and so on.
 * Cell sizes differ by at most one bucket. Only the first map of a
 * deployment is built this way; every later map is an edit of the one before.
 */
export function evenSplit(cellIds: readonly string[]): BucketMap {
  if (cellIds.length === 0) throw new Error('at least one cell is needed to build a bucket map');
  return Array.from({ length: BUCKET_COUNT }, (_, bucket) => cellIds[Math.floor((bucket * cellIds.length) / BUCKET_COUNT)] as string);
}

export interface Route {
  readonly tenantId: string;
  readonly bucket: number;
  readonly cellId: string;
  /** Why this cell: the tenant is pinned, or its bucket maps there. */
  readonly reason: 'override' | 'map';
}

/** The cell that owns a tenant: its override if pinned, else its bucket's cell. `bucket` may remember its answers (the router's cache). */
export function routeTenant(map: BucketMap, overrides: Overrides, tenantId: string, bucketOfTenant: (tenantId: string) => number = bucketOf): Route {
  const bucket = bucketOfTenant(tenantId);
  const pinned = Object.hasOwn(overrides, tenantId) ? overrides[tenantId] : undefined;
  if (pinned !== undefined) return { tenantId, bucket, cellId: pinned, reason: 'override' };
  return { tenantId, bucket, cellId: map[bucket] as string, reason: 'map' };
}

/** How many buckets each cell holds. */
export function bucketCounts(map: BucketMap): Map<string, number> {
  const counts = new Map<string, number>();
  for (const cellId of map) counts.set(cellId, (counts.get(cellId) ?? 0) + 1);
  return counts;
}
