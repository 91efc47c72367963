import type { IncomingMessage, ServerResponse } from 'node:http';

/** The width of one slot of the traffic counts. */
export const TRAFFIC_SLOT_SECONDS = 5;
/** How many slots are kept: the last 5 minutes. */
export const TRAFFIC_SLOTS = 60;
const TRAFFIC_PATH = '/_local/traffic';

/** Requests and 5xx answers per cell, per slot, oldest first: what `GET /_local/traffic` answers. */
export interface TrafficCounts {
  readonly slotSeconds: number;
  /** When the newest slot started (ms since the epoch). */
  readonly newestSlotAt: number;
  readonly cells: Record<string, { requests: number[]; errors: number[] }>;
}

/**
 * The front door's answers counted by the cell that served them (its
 * `x-cell-id`), in 5-second slots over the last 5 minutes: the local
 * counterpart of the router's per-cell request metrics, for the console.
 * Answers without a cell (refused at the router) are counted under `-`.
 */
export class TrafficMeter {
  private readonly slots = new Map<number, Map<string, { requests: number; errors: number }>>();

  constructor(private readonly now: () => number = Date.now) {}

  record(statusCode: number, cellId: string | undefined): void {
    const slot = this.slotOf(this.now());
    let cells = this.slots.get(slot);
    if (!cells) {
      cells = new Map();
      this.slots.set(slot, cells);
      for (const old of this.slots.keys()) if (old <= slot - TRAFFIC_SLOTS) this.slots.delete(old);
    }
    const counts = cells.get(cellId ?? '-') ?? { requests: 0, errors: 0 };
    counts.requests += 1;
    if (statusCode >= 500) counts.errors += 1;
    cells.set(cellId ?? '-', counts);
  }

  counts(): TrafficCounts {
    const newest = this.slotOf(this.now());
    const cellIds = new Set([...this.slots.values()].flatMap((cells) => [...cells.keys()]));
    const cells: TrafficCounts['cells'] = {};
    for (const cellId of [...cellIds].sort()) {
      const series = { requests: [] as number[], errors: [] as number[] };
      for (let slot = newest - TRAFFIC_SLOTS + 1; slot <= newest; slot += 1) {
        const counts = this.slots.get(slot)?.get(cellId);
        series.requests.push(counts?.requests ?? 0);
        series.errors.push(counts?.errors ?? 0);
      }
      cells[cellId] = series;
    }
    return { slotSeconds: TRAFFIC_SLOT_SECONDS, newestSlotAt: newest * TRAFFIC_SLOT_SECONDS * 1000, cells };
  }

  private slotOf(ms: number): number {
    return Math.floor(ms / (TRAFFIC_SLOT_SECONDS * 1000));
  }
}

/** `GET /_local/traffic`: the meter's counts as JSON. True when it served the request. */
export function serveTraffic(meter: TrafficMeter, req: IncomingMessage, res: ServerResponse): boolean {
  if (new URL(req.url ?? '/', 'http://localhost').pathname !== TRAFFIC_PATH) return false;
  if (req.method !== 'GET') {
    res.writeHead(405, { allow: 'GET', 'content-type': 'application/json' }).end(JSON.stringify({ error: 'GET only' }));
    return true;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(meter.counts()));
  return true;
}
