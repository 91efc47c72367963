/**
 * The cell API's ownership check on the normal path: a warm check within the
 * lease (the request's own cost), and the reads the lease costs.
 */
import { randomUUID } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { encodeBuckets } from '../routing/bucket-codec.ts';
import { evenSplit } from '../routing/routing.ts';
import { OwnershipCache } from '../functions/cell-api/ownership.ts';
import { moveMarkerKey, OWNERSHIP_KEY, OWNERSHIP_LEASE_MS } from '../layers/shared/src/contracts/cell-table.ts';

export interface OwnershipFigures {
  /** Nanoseconds per check within the lease (no read). */
  readonly nsPerCheck: number;
  readonly checks: number;
  readonly leaseMs: number;
  /** Ownership-record reads over a 1-second window of this many requests to one instance, at its busiest and at 1 request/s. */
  readonly readsPerRequest: { readonly at1000PerSecond: number; readonly at1PerSecond: number };
  /**
   * Requests whose writes the check sends to the change journal (one more
   * write per record): with no move in the cell, and with one tenant of the
   * cell moving (for the other tenants).
   */
  readonly journaledPerRequest: { readonly noMove: number; readonly otherTenantMoving: number };
}

export async function benchOwnership(cells: readonly string[], checks: number): Promise<OwnershipFigures> {
  const record = {
    epoch: 2,
    ...encodeBuckets(evenSplit(cells)),
    overrides: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`pinned-${i}`, cells[i % cells.length] as string])),
  };
  let reads = 0;
  // A table that answers the cell's own partition (the record, no move markers) at once: the read's own latency is DynamoDB's, not the check's.
  const doc = {
    send: async () => {
      reads++;
      return { Items: [{ ...OWNERSHIP_KEY, ...record }] };
    },
  } as unknown as DynamoDBDocumentClient;
  let clock = 0;
  const cache = new OwnershipCache(doc, 'cell-table', cells[0] as string, { now: () => clock });
  const ids = Array.from({ length: 10_000 }, () => randomUUID());
  let owned = 0;
  const run = async (count: number) => {
    for (let i = 0; i < count; i++) if ((await cache.check(ids[i % ids.length] as string)).owned) owned++;
  };
  await run(Math.min(checks, 200_000));
  const started = process.hrtime.bigint();
  await run(checks);
  const nsPerCheck = Number(process.hrtime.bigint() - started) / checks;
  if (owned < 0) throw new Error('unreachable');

  // Reads per request: one per lease per instance, whatever the rate.
  const readsOver = async (requestsPerSecond: number) => {
    reads = 0;
    clock = 0;
    const fresh = new OwnershipCache(doc, 'cell-table', cells[0] as string, { now: () => clock });
    const seconds = 10;
    for (let n = 0; n < requestsPerSecond * seconds; n++) {
      clock = (n * 1000) / requestsPerSecond;
      await fresh.check(ids[n % ids.length] as string);
    }
    return reads / (requestsPerSecond * seconds);
  };
  // What the journal costs the normal path: the check says whether a request's writes are journaled (ChangeJournal.run), nothing else does.
  const journaled = async (items: Array<Record<string, unknown>>) => {
    const table = { send: async () => ({ Items: items }) } as unknown as DynamoDBDocumentClient;
    const checking = new OwnershipCache(table, 'cell-table', cells[0] as string, { now: () => 0 });
    let count = 0;
    for (const id of ids) if ((await checking.check(id)).journal !== undefined) count++;
    return count / ids.length;
  };
  const moving = { ...moveMarkerKey('bench-move'), moveId: 'bench-move', role: 'source', buckets: [], tenants: ['a-tenant-not-asked-for'] };
  return {
    nsPerCheck,
    checks,
    leaseMs: OWNERSHIP_LEASE_MS,
    readsPerRequest: { at1000PerSecond: await readsOver(1000), at1PerSecond: await readsOver(1) },
    journaledPerRequest: {
      noMove: await journaled([{ ...OWNERSHIP_KEY, ...record }]),
      otherTenantMoving: await journaled([{ ...OWNERSHIP_KEY, ...record }, moving]),
    },
  };
}
