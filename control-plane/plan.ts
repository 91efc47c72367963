import { ControlPlaneError } from './errors.ts';
import type { CellStatus } from '../routing/records.ts';
import { BUCKET_COUNT, bucketCounts, type BucketMap } from '../routing/routing.ts';

export interface PlanCell {
  readonly cellId: string;
  readonly status: CellStatus;
  readonly weight: number;
}

export interface BucketMove {
  readonly bucket: number;
  readonly from: string;
  readonly to: string;
}

export interface PlannedCell extends PlanCell {
  readonly before: number;
  readonly after: number;
}

export interface RebalancePlan {
  /** The map version the plan was computed from; applying it to any other version is wrong. */
  readonly basedOnVersion: number;
  readonly cells: PlannedCell[];
  readonly moves: BucketMove[];
}

export class NoActiveCellError extends ControlPlaneError {
  constructor() {
    super('no active cell with a positive weight: there is nowhere to move buckets to');
  }
}

/**
 * The fewest bucket moves that leave every active cell with its share of the
 * buckets by weight, rounded down or up, and nothing on cells that are not
 * active (draining, inactive, or no longer registered).
 *
 * Each active cell's share `q = 16384 · weight / totalWeight` is rounded to
 * `floor(q)`, and the `16384 − Σ floor(q)` leftover buckets go one each to
 * cells with a fractional share. A cell holding more than `floor(q)` already
 * saves a move when it gets one, so those are served first: no other choice
 * of roundings needs fewer moves, and moves go only from cells above their
 * target to cells below it, each bucket at most once.
 *
 * A cell gives up its highest-numbered buckets and a cell receives the
 * lowest-numbered of those on offer, so maps built from contiguous ranges
 * stay close to contiguous (and compress to a few hundred bytes).
 */
export function planRebalance(map: BucketMap, cells: readonly PlanCell[], basedOnVersion: number): RebalancePlan {
  const active = cells.filter((cell) => cell.status === 'active' && cell.weight > 0).sort(byId);
  if (active.length === 0) throw new NoActiveCellError();
  const counts = bucketCounts(map);
  const totalWeight = active.reduce((sum, cell) => sum + cell.weight, 0);

  const targets = new Map<string, number>();
  const fractional: Array<{ cellId: string; fraction: number; surplus: boolean }> = [];
  for (const cell of active) {
    const share = (BUCKET_COUNT * cell.weight) / totalWeight;
    const floor = Math.floor(share);
    targets.set(cell.cellId, floor);
    if (share > floor) {
      fractional.push({ cellId: cell.cellId, fraction: share - floor, surplus: (counts.get(cell.cellId) ?? 0) > floor });
    }
  }
  let leftover = BUCKET_COUNT - [...targets.values()].reduce((sum, target) => sum + target, 0);
  fractional.sort((a, b) => Number(b.surplus) - Number(a.surplus) || b.fraction - a.fraction || compare(a.cellId, b.cellId));
  for (const { cellId } of fractional) {
    if (leftover === 0) break;
    targets.set(cellId, (targets.get(cellId) as number) + 1);
    leftover -= 1;
  }

  // Buckets each over-full cell gives up: its highest-numbered ones.
  const bucketsOf = new Map<string, number[]>();
  map.forEach((cellId, bucket) => {
    const list = bucketsOf.get(cellId);
    if (list) list.push(bucket);
    else bucketsOf.set(cellId, [bucket]);
  });
  const released: Array<{ bucket: number; from: string }> = [];
  // In any order: the released buckets are sorted next.
  for (const [cellId, owned] of bucketsOf) {
    const surplus = owned.length - (targets.get(cellId) ?? 0);
    for (const bucket of owned.slice(owned.length - Math.max(0, surplus))) released.push({ bucket, from: cellId });
  }
  released.sort((a, b) => a.bucket - b.bucket);

  const moves: BucketMove[] = [];
  const next = [...map];
  let cursor = 0;
  for (const cell of active) {
    const deficit = (targets.get(cell.cellId) as number) - (counts.get(cell.cellId) ?? 0);
    for (let n = 0; n < deficit; n += 1) {
      const { bucket, from } = released[cursor++] as { bucket: number; from: string };
      moves.push({ bucket, from, to: cell.cellId });
      next[bucket] = cell.cellId;
    }
  }

  const after = bucketCounts(next);
  const listed = new Map(cells.map((cell) => [cell.cellId, cell]));
  for (const cellId of counts.keys()) {
    if (!listed.has(cellId)) listed.set(cellId, { cellId, status: 'inactive', weight: 0 });
  }
  return {
    basedOnVersion,
    // In bucket order already: the cells take the released buckets, sorted, one after another.
    moves,
    cells: [...listed.values()].sort(byId).map((cell) => ({
      ...cell,
      before: counts.get(cell.cellId) ?? 0,
      after: after.get(cell.cellId) ?? 0,
    })),
  };
}

/** Moves grouped by source and destination, each as contiguous bucket ranges. */
export function summarizeMoves(moves: readonly BucketMove[]): Array<{ from: string; to: string; count: number; ranges: Array<[number, number]> }> {
  const groups = new Map<string, { from: string; to: string; count: number; ranges: Array<[number, number]> }>();
  for (const move of [...moves].sort((a, b) => a.bucket - b.bucket)) {
    const key = `${move.from}\u0000${move.to}`;
    let group = groups.get(key);
    if (!group) {
      group = { from: move.from, to: move.to, count: 0, ranges: [] };
      groups.set(key, group);
    }
    group.count += 1;
    const last = group.ranges.at(-1);
    if (last && last[1] === move.bucket - 1) last[1] = move.bucket;
    else group.ranges.push([move.bucket, move.bucket]);
  }
  return [...groups.values()].sort((a, b) => compare(a.from, b.from) || compare(a.to, b.to));
}

function byId(a: { cellId: string }, b: { cellId: string }): number {
  return compare(a.cellId, b.cellId);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
