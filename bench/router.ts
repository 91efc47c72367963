/** The router's one decision per request (tenant → bucket → cell) and how evenly it spreads tenants. */
import { randomUUID } from 'node:crypto';
import { evenSplit, routeTenant } from '../control-plane/routing.ts';

export interface RouterFigures {
  readonly cells: readonly string[];
  /** Nanoseconds per `routeTenant` on a warm map. */
  readonly nsPerDecision: number;
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
  const run = (count: number) => {
    for (let i = 0; i < count; i++) sink += routeTenant(map, overrides, ids[i % ids.length] as string).bucket;
  };
  run(Math.min(decisions, 200_000)); // warm-up: JIT and the map in cache
  const started = process.hrtime.bigint();
  run(decisions);
  const nsPerDecision = Number(process.hrtime.bigint() - started) / decisions;
  if (sink < 0) throw new Error('unreachable: keeps the loop from being optimized away');

  const perCell: Record<string, number> = Object.fromEntries(cells.map((cell) => [cell, 0]));
  for (let i = 0; i < tenants; i++) {
    const { cellId } = routeTenant(map, {}, randomUUID());
    perCell[cellId] = (perCell[cellId] ?? 0) + 1;
  }
  const maxOverMean = Math.max(...Object.values(perCell)) / (tenants / cells.length);
  return { cells, nsPerDecision, decisions, tenants, perCell, maxOverMean };
}
