import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NoActiveCellError, planRebalance, summarizeMoves, type PlanCell } from '../../control-plane/plan.ts';
import { BUCKET_COUNT, bucketCounts, evenSplit, type BucketMap } from '../../routing/routing.ts';

const STATUSES = ['active', 'draining', 'inactive'] as const;

/**
 * Registered cells (at least one active) and a map over them plus, at times,
 * a cell no longer registered. Weights of 1 or 2 over at most 8 cells keep
 * the best possible balance within 1.001 (rounding costs at most one bucket
 * per cell: 1 + totalWeight / (16384 · smallestWeight) ≤ 1 + 16/16384).
 */
const scenario = fc
  .record({
    cells: fc.uniqueArray(
      fc.record({
        cellId: fc.constantFrom(...Array.from({ length: 12 }, (_, n) => `cell-${n}`)),
        status: fc.constantFrom(...STATUSES),
        weight: fc.integer({ min: 1, max: 2 }),
      }),
      { minLength: 1, maxLength: 8, selector: (cell) => cell.cellId },
    ),
    cuts: fc.uniqueArray(fc.integer({ min: 1, max: BUCKET_COUNT - 1 }), { maxLength: 40 }),
    owners: fc.array(fc.nat(), { minLength: 41, maxLength: 41 }),
    withGhost: fc.boolean(),
  })
  .filter(({ cells }) => cells.some((cell) => cell.status === 'active'))
  // Kept as ranges so that a counterexample prints short; buildMap expands it.
  .map(({ cells, cuts, owners, withGhost }) => {
    const pool = [...cells.map((cell) => cell.cellId), ...(withGhost ? ['ghost'] : [])];
    const starts = [0, ...cuts.sort((a, b) => a - b)];
    return { cells: cells as PlanCell[], ranges: starts.map((start, n) => [start, pool[(owners[n] ?? 0) % pool.length] as string] as const) };
  });

function buildMap(ranges: ReadonlyArray<readonly [number, string]>): BucketMap {
  const map: string[] = [];
  ranges.forEach(([start, owner], n) => {
    const end = ranges[n + 1]?.[0] ?? BUCKET_COUNT;
    for (let bucket = start; bucket < end; bucket += 1) map.push(owner);
  });
  return map;
}

/** The fewest moves any floor/ceil rounding of the weighted shares allows, by trying every rounding. */
function fewestMoves(map: BucketMap, cells: readonly PlanCell[]): number {
  const active = cells.filter((cell) => cell.status === 'active');
  const counts = bucketCounts(map);
  const total = active.reduce((sum, cell) => sum + cell.weight, 0);
  const shares = active.map((cell) => ({ cell, share: (BUCKET_COUNT * cell.weight) / total }));
  const leftover = BUCKET_COUNT - shares.reduce((sum, { share }) => sum + Math.floor(share), 0);
  const fractional = shares.filter(({ share }) => share > Math.floor(share));
  const activeIds = new Set(active.map((cell) => cell.cellId));
  const stranded = [...counts].filter(([cellId]) => !activeIds.has(cellId)).reduce((sum, [, n]) => sum + n, 0);
  let best = Number.POSITIVE_INFINITY;
  for (let mask = 0; mask < 1 << fractional.length; mask += 1) {
    let bits = 0;
    for (let m = mask; m; m >>= 1) bits += m & 1;
    if (bits !== leftover) continue;
    const roundedUp = new Set(fractional.filter((_, n) => mask & (1 << n)).map(({ cell }) => cell.cellId));
    const moves = shares.reduce((sum, { cell, share }) => {
      const target = Math.floor(share) + (roundedUp.has(cell.cellId) ? 1 : 0);
      return sum + Math.max(0, (counts.get(cell.cellId) ?? 0) - target);
    }, stranded);
    best = Math.min(best, moves);
  }
  return best;
}

describe('planRebalance', () => {
  it('moves exactly the fewest buckets, only onto active cells, and leaves max/mean ≤ 1.001 by weight', () => {
    fc.assert(
      fc.property(scenario, ({ cells, ranges }) => {
        const map = buildMap(ranges);
        const plan = planRebalance(map, cells, 4);
        const active = new Map(cells.filter((c) => c.status === 'active').map((c) => [c.cellId, c.weight]));

        expect(plan.moves).toHaveLength(fewestMoves(map, cells));
        const wrong = plan.moves.filter((m) => m.from !== map[m.bucket] || m.from === m.to);
        expect(wrong).toEqual([]);
        const moved = new Set(plan.moves.map((move) => move.bucket));
        expect(moved.size).toBe(plan.moves.length);
        // The map the moves lead to: every bucket on an active cell.
        const next = [...map];
        for (const move of plan.moves) next[move.bucket] = move.to;
        expect(next.every((cellId) => active.has(cellId))).toBe(true);

        const totalWeight = [...active.values()].reduce((sum, w) => sum + w, 0);
        const after = bucketCounts(next);
        const mean = BUCKET_COUNT / totalWeight;
        const worst = Math.max(...[...active].map(([cellId, weight]) => (after.get(cellId) ?? 0) / weight));
        expect(worst / mean).toBeLessThanOrEqual(1.001);
        expect(plan.basedOnVersion).toBe(4);
      }),
      { numRuns: 300 },
    );
  });

  it('has nothing to do on a map it balanced itself', () => {
    fc.assert(
      fc.property(scenario, ({ cells, ranges }) => {
        const map = [...buildMap(ranges)];
        for (const move of planRebalance(map, cells, 1).moves) map[move.bucket] = move.to;
        expect(planRebalance(map, cells, 2).moves).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  it('gives a new cell its share from the others and nothing else moves', () => {
    const map = evenSplit(['cell-1', 'cell-2', 'cell-3']);
    const cells: PlanCell[] = ['cell-1', 'cell-2', 'cell-3', 'cell-4'].map((cellId) => ({ cellId, status: 'active', weight: 1 }));
    const plan = planRebalance(map, cells, 1);
    expect(plan.moves).toHaveLength(4_096);
    expect(plan.cells.map((c) => [c.cellId, c.before, c.after])).toEqual([
      ['cell-1', 5462, 4096],
      ['cell-2', 5461, 4096],
      ['cell-3', 5461, 4096],
      ['cell-4', 0, 4096],
    ]);
    // Each cell gives up the top of its range, ending at its last bucket: three contiguous ranges.
    const lastOf = (cellId: string) => map.lastIndexOf(cellId);
    expect(summarizeMoves(plan.moves).map((m) => [m.from, m.to, m.ranges])).toEqual([
      ['cell-1', 'cell-4', [[lastOf('cell-1') - 1365, lastOf('cell-1')]]],
      ['cell-2', 'cell-4', [[lastOf('cell-2') - 1364, lastOf('cell-2')]]],
      ['cell-3', 'cell-4', [[lastOf('cell-3') - 1364, lastOf('cell-3')]]],
    ]);
    expect(lastOf('cell-3')).toBe(16_383);
  });

  it('refuses when no cell is active, or none has a weight', () => {
    expect(() => planRebalance(evenSplit(['a']), [{ cellId: 'a', status: 'draining', weight: 1 }], 1)).toThrow(NoActiveCellError);
    expect(() => planRebalance(evenSplit(['a']), [{ cellId: 'a', status: 'active', weight: 0 }], 1)).toThrow(
      'no active cell with a positive weight: there is nowhere to move buckets to',
    );
  });

  it('plans a small map exactly as worked by hand: lowest buckets on offer to the first cell by id, a cell no longer listed emptied', () => {
    // b holds 0–5999, a cell no longer registered ("ghost") 6000–8191, a 8192–16383; c and d are new.
    const map = [...Array(6000).fill('b'), ...Array(2192).fill('ghost'), ...Array(8192).fill('a')] as string[];
    const cells: PlanCell[] = ['d', 'b', 'c', 'a'].map((cellId) => ({ cellId, status: 'active', weight: 1 }));
    const plan = planRebalance(map, cells, 7);
    expect(plan.basedOnVersion).toBe(7);
    expect(plan.cells).toEqual([
      { cellId: 'a', status: 'active', weight: 1, before: 8192, after: 4096 },
      { cellId: 'b', status: 'active', weight: 1, before: 6000, after: 4096 },
      { cellId: 'c', status: 'active', weight: 1, before: 0, after: 4096 },
      { cellId: 'd', status: 'active', weight: 1, before: 0, after: 4096 },
      { cellId: 'ghost', status: 'inactive', weight: 0, before: 2192, after: 0 },
    ]);
    expect(plan.moves.map((move) => move.bucket)).toEqual([...range(4096, 8192), ...range(12288, 16384)]);
    expect(summarizeMoves(plan.moves)).toEqual([
      { from: 'a', to: 'd', count: 4096, ranges: [[12288, 16383]] },
      { from: 'b', to: 'c', count: 1904, ranges: [[4096, 5999]] },
      { from: 'ghost', to: 'c', count: 2192, ranges: [[6000, 8191]] },
    ]);
  });

  it("hands out the lowest buckets on offer first when the givers' buckets interleave", () => {
    // a holds the even buckets, b the odd ones; c and d are new: each gives up its top 4,096, and c takes the lowest 4,096 of those.
    const map = Array.from({ length: BUCKET_COUNT }, (_, bucket) => (bucket % 2 === 0 ? 'a' : 'b'));
    const cells: PlanCell[] = ['a', 'b', 'c', 'd'].map((cellId) => ({ cellId, status: 'active', weight: 1 }));
    const { moves } = planRebalance(map, cells, 1);
    expect(moves.map((move) => move.bucket)).toEqual(range(8192, 16384));
    expect(moves.filter((move) => move.to === 'c').map((move) => move.bucket)).toEqual(range(8192, 12288));
    expect(summarizeMoves(moves).map(({ from, to, count }) => [from, to, count])).toEqual([
      ['a', 'c', 2048],
      ['a', 'd', 2048],
      ['b', 'c', 2048],
      ['b', 'd', 2048],
    ]);
  });

  it('gives the leftover buckets to a cell that already holds them first, then by the largest fraction', () => {
    const weighted = (weights: Record<string, number>): PlanCell[] =>
      Object.entries(weights).map(([cellId, weight]) => ({ cellId, status: 'active', weight }));
    const shares = (map: BucketMap, cells: PlanCell[]) => planRebalance(map, cells, 1).cells.map((cell) => [cell.cellId, cell.after]);
    // Shares 8192, 2730.67 and 5461.33: one bucket left over, for b (the largest fraction); a's share is whole and gets none.
    expect(shares(Array(BUCKET_COUNT).fill('a'), weighted({ a: 3, b: 1, c: 2 }))).toEqual([
      ['a', 8192],
      ['b', 2731],
      ['c', 5461],
    ]);
    // The same shares the other way round: the largest fraction is c's now, not the first cell's.
    expect(shares(Array(BUCKET_COUNT).fill('a'), weighted({ a: 3, b: 2, c: 1 }))).toEqual([
      ['a', 8192],
      ['b', 5461],
      ['c', 2731],
    ]);
    // Shares 5461.33 and 10922.67: b already holds more than 5461, so keeping one saves a move.
    expect(shares(Array(BUCKET_COUNT).fill('b'), weighted({ b: 1, c: 2 }))).toEqual([
      ['b', 5462],
      ['c', 10922],
    ]);
    expect(shares(Array(BUCKET_COUNT).fill('c'), weighted({ b: 1, c: 2 }))).toEqual([
      ['b', 5461],
      ['c', 10923],
    ]);
  });
});

describe('summarizeMoves', () => {
  it('groups moves by source and target, in that order, as ranges of contiguous buckets, whatever order they come in', () => {
    const moves = [
      { bucket: 9, from: 'x', to: 'b' },
      { bucket: 3, from: 'x', to: 'a' },
      { bucket: 1, from: 'y', to: 'a' },
      { bucket: 4, from: 'x', to: 'a' },
      { bucket: 8, from: 'x', to: 'b' },
      { bucket: 6, from: 'x', to: 'a' },
    ];
    expect(summarizeMoves(moves)).toEqual([
      {
        from: 'x',
        to: 'a',
        count: 3,
        ranges: [
          [3, 4],
          [6, 6],
        ],
      },
      { from: 'x', to: 'b', count: 2, ranges: [[8, 9]] },
      { from: 'y', to: 'a', count: 1, ranges: [[1, 1]] },
    ]);
    expect(summarizeMoves([])).toEqual([]);
    // Groups met in the opposite order come out in the same order.
    expect(
      summarizeMoves([
        { bucket: 1, from: 'y', to: 'b' },
        { bucket: 2, from: 'y', to: 'a' },
        { bucket: 3, from: 'x', to: 'a' },
      ]).map(({ from, to }) => `${from}>${to}`),
    ).toEqual(['x>a', 'y>a', 'y>b']);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, n) => from + n);
}
