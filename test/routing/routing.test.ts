import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeBuckets, encodeBuckets } from '../../routing/bucket-codec.ts';
import { BUCKET_COUNT, bucketOf, evenSplit, routeTenant } from '../../routing/routing.ts';
import { cellOfBucket } from '../support/routing.ts';
import { cachedBucketOf } from '../../functions/router/bucket-cache.ts';

describe('bucketOf', () => {
  it('is uint32(first 4 bytes of sha256(tenantId)) mod 16384', () => {
    // sha256("tenant-a") starts with 80a707af; sha256("") with e3b0c442.
    expect(bucketOf('tenant-a')).toBe(0x80a707af % BUCKET_COUNT);
    expect(bucketOf('')).toBe(0xe3b0c442 % BUCKET_COUNT);
  });

  it('is deterministic and always a valid bucket', () => {
    for (let n = 0; n < 1_000; n += 1) {
      const tenantId = `tenant-${n}`;
      const bucket = bucketOf(tenantId);
      expect(bucket).toBe(bucketOf(tenantId));
      expect(Number.isInteger(bucket) && bucket >= 0 && bucket < BUCKET_COUNT).toBe(true);
    }
  });
});

describe("the router's bucket cache", () => {
  it('hashes a tenant it remembers no more than once, and again once it has let it go', () => {
    const hashed: string[] = [];
    const cached = cachedBucketOf(2, (tenantId) => {
      hashed.push(tenantId);
      return bucketOf(tenantId);
    });
    for (const tenantId of ['a', 'a', 'b', 'a', 'b']) cached(tenantId);
    expect(hashed).toEqual(['a', 'b']);
    // quick-lru keeps up to two generations of `max`: past them, the oldest is hashed again.
    for (const tenantId of ['c', 'd', 'e', 'f', 'a']) cached(tenantId);
    expect(hashed).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'a']);
  });

  it('answers as bucketOf does, for tenants it remembers and for those it has let go', () => {
    const cached = cachedBucketOf(50);
    const tenants = Array.from({ length: 200 }, (_, i) => `tenant-${i}`);
    // Twice over more tenants than it holds: the second round finds the first's evicted, and hashes them again.
    for (const round of [1, 2]) {
      for (const tenantId of tenants) expect(cached(tenantId), `${tenantId}, round ${round}`).toBe(bucketOf(tenantId));
    }
    const map = evenSplit(['a', 'b', 'c']);
    for (const tenantId of tenants.slice(0, 10)) expect(routeTenant(map, {}, tenantId, cached)).toEqual(routeTenant(map, {}, tenantId));
  });
});

describe('evenSplit', () => {
  it('gives every bucket a cell and every cell an equal share (±1 bucket)', () => {
    for (const cells of [['a'], ['a', 'b'], ['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e', 'f', 'g']]) {
      const map = evenSplit(cells);
      expect(map).toHaveLength(BUCKET_COUNT);
      const counts = cells.map((cell) => map.filter((owner: string) => owner === cell).length);
      expect(counts.reduce((sum, n) => sum + n, 0)).toBe(BUCKET_COUNT);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
  });

  it('refuses an empty cell list', () => {
    expect(() => evenSplit([])).toThrow(/at least one cell/);
  });
});

describe('tenant spread', () => {
  it('spreads 1,000,000 random tenant ids over 3 cells with max/mean ≤ 1.02', () => {
    const cells = ['cell-1', 'cell-2', 'cell-3'];
    const map = evenSplit(cells);
    const load = new Map(cells.map((cell) => [cell, 0]));
    const total = 1_000_000;
    for (let n = 0; n < total; n += 1) {
      const cell = cellOfBucket(map, randomBytes(12).toString('base64url'));
      load.set(cell, (load.get(cell) ?? 0) + 1);
    }
    const mean = total / cells.length;
    const max = Math.max(...load.values());
    expect(max / mean).toBeLessThanOrEqual(1.02);
    expect(Math.min(...load.values())).toBeGreaterThan(0);
  });
});

describe('routeTenant', () => {
  const map = evenSplit(['cell-1', 'cell-2']);

  it('uses the override of a pinned tenant, else the bucket map, and says which', () => {
    const tenantId = 'big-tenant';
    const byMap = cellOfBucket(map, tenantId);
    const other = byMap === 'cell-1' ? 'cell-2' : 'cell-1';
    expect(routeTenant(map, {}, tenantId)).toEqual({ tenantId, bucket: bucketOf(tenantId), cellId: byMap, reason: 'map' });
    expect(routeTenant(map, { [tenantId]: other }, tenantId)).toEqual({ tenantId, bucket: bucketOf(tenantId), cellId: other, reason: 'override' });
  });

  it('is not fooled by tenant ids that name Object properties', () => {
    expect(routeTenant(map, {}, 'constructor').reason).toBe('map');
    expect(routeTenant(map, {}, '__proto__').reason).toBe('map');
  });
});

describe('bucket map encoding', () => {
  it('round-trips any map, and keeps a map of ranges to a few hundred bytes', () => {
    const ranges = evenSplit(['cell-1', 'cell-2', 'cell-3']);
    const encoded = encodeBuckets(ranges);
    expect(encoded.cells).toEqual(['cell-1', 'cell-2', 'cell-3']);
    expect(encoded.buckets.length).toBeLessThan(300);
    expect(decodeBuckets(encoded)).toEqual(ranges);

    const cells = Array.from({ length: 40 }, (_, n) => `cell-${n}`);
    const shuffled = Array.from({ length: BUCKET_COUNT }, () => cells[randomBytes(1)[0]! % cells.length]!);
    const big = encodeBuckets(shuffled);
    expect(decodeBuckets(big)).toEqual(shuffled);
    expect(big.buckets.length).toBeLessThan(40_000);
  });

  it('refuses a map of the wrong size and data that does not decode to one', () => {
    expect(() => encodeBuckets(['cell-1'])).toThrow(/16384 entries/);
    const good = encodeBuckets(evenSplit(['a', 'b']));
    expect(() => decodeBuckets({ ...good, cells: ['a'] })).toThrow(/cell index 1/);
    expect(() => decodeBuckets({ cells: ['a'], buckets: 'not deflate' })).toThrow(/does not inflate/);
    expect(() => decodeBuckets({ cells: ['a'], buckets: deflateRawSync(Buffer.alloc(2)).toString('base64') })).toThrow(/holds 1 buckets/);
  });
});
