/** The router's one decision per request (tenant → bucket → cell) and how evenly it spreads tenants. */
import { randomUUID } from 'node:crypto';
import { evenSplit, routeTenant } from '../routing/routing.ts';
import { cachedBucketOf } from '../functions/router/bucket-cache.ts';

export interface RouterFigures {
  readonly cells: readonly string[];
  /** Nanoseconds per `routeTenant` on a warm map, hashing every tenant. */
  readonly nsPerDecision: number;
  /** The same with the router's bucket cache, every tenant already in it (a warm instance). */
  readonly nsPerCachedDecision: number;
  readonly decisions: number;
  readonly tenants: number;
  /** Tenants per cell. */
  readonly perCell: Record<string, number>;
  /** The fullest cell against the mean (1 is perfectly even). */
  readonly maxOverMean: number;
}

export function benchRouter(cells: readonly string[], decisions: number, tenants = 1_000_000): RouterFigures {
  const map = evenSplit(cells);
  // A few pinned tenants, as a real map has: the lookup misses for everyone else.
  const overrides = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`pinned-${i}`, cells[i % cells.length] as string]));
  const ids = Array.from({ length: 10_000 }, () => randomUUID());
  let sink = 0;
  const cached = cachedBucketOf();
  const run = (count: number, bucket?: (tenantId: string) => number) => {
    for (let i = 0; i < count; i++) sink += routeTenant(map, overrides, ids[i % ids.length] as string, bucket).bucket;
  };
  const timed = (bucket?: (tenantId: string) => number) => {
    const started = process.hrtime.bigint();
    run(decisions, bucket);
    return Number(process.hrtime.bigint() - started) / decisions;
  };
  // Warm-up: JIT, the map in cache, and every tenant in the bucket cache.
  run(Math.min(decisions, 200_000));
  run(Math.min(decisions, 200_000), cached);
  // Side by side, alternating, so that neither gets the quieter moment.
  const plain: number[] = [];
  const withCache: number[] = [];
  for (let round = 0; round < 2; round++) {
    plain.push(timed());
    withCache.push(timed(cached));
  }
  const nsPerDecision = Math.min(...plain);
  const nsPerCachedDecision = Math.min(...withCache);
  if (sink < 0) throw new Error('unreachable: keeps the loop from being optimized away');

  const perCell: Record<string, number> = Object.fromEntries(cells.map((cell) => [cell, 0]));
  for (let i = 0; i < tenants; i++) {
    const { cellId } = routeTenant(map, {}, randomUUID());
    perCell[cellId] = (perCell[cellId] ?? 0) + 1;
  }
  const maxOverMean = Math.max(...Object.values(perCell)) / (tenants / cells.length);
  return { cells, nsPerDecision, nsPerCachedDecision, decisions, tenants, perCell, maxOverMean };
}
