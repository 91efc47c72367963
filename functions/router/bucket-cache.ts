import QuickLRU from 'quick-lru';
import { bucketOf } from '../../routing/routing.ts';

/**
 * Tenants whose bucket a router instance remembers: at about 100 bytes an
 * entry, and with quick-lru holding up to two generations of 50,000, at
 * most some 10 MB of the router's memory.
 */
export const BUCKET_CACHE_ENTRIES = 50_000;

/**
 * `bucketOf` with the answers of the tenants seen lately kept (least
 * recently used out first): a warm routing decision skips the SHA-256.
 * The bucket function itself is unchanged.
 */
export function cachedBucketOf(max = BUCKET_CACHE_ENTRIES, hash: (tenantId: string) => number = bucketOf): (tenantId: string) => number {
  const cache = new QuickLRU<string, number>({ maxSize: max });
  return (tenantId) => {
    let bucket = cache.get(tenantId);
    if (bucket === undefined) {
      bucket = hash(tenantId);
      cache.set(tenantId, bucket);
    }
    return bucket;
  };
}
