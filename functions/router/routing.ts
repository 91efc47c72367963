import { createHash } from 'node:crypto';

/** The number of buckets tenants hash into. It never changes: moving tenants means moving buckets. */
export const BUCKET_COUNT = 16_384;

/** `uint32(first 4 bytes of sha256(tenantId)) mod 16384`. */
export function bucketOf(tenantId: string): number {
  const digest = createHash('sha256').update(tenantId, 'utf8').digest();
  return digest.readUInt32BE(0) % BUCKET_COUNT;
}

/** Bucket → cell. Index `b` holds the cell of bucket `b`. */
export type BucketMap = readonly string[];

/**
 * Splits the buckets evenly over the cells in contiguous ranges, in the
 * order given: with 3 cells, buckets 0..5461 go to the first, and so on.
 * Cell sizes differ by at most one bucket.
 */
export function evenSplit(cellIds: readonly string[]): BucketMap {
  if (cellIds.length === 0) throw new Error('at least one cell is needed to build a bucket map');
  return Array.from(
    { length: BUCKET_COUNT },
    (_, bucket) => cellIds[Math.floor((bucket * cellIds.length) / BUCKET_COUNT)] as string,
  );
}

/** The cell that owns a tenant. */
export function cellFor(map: BucketMap, tenantId: string): string {
  return map[bucketOf(tenantId)] as string;
}
