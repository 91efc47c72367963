/**
 * One tenant floods the local runtime while two quiet tenants, one in its
 * cell and one in another, send one GET at a time: their latency and rate
 * before the flood and during it, side by side in one run.
 */
import { connectLocal } from '../control-plane/connect.ts';
import { QuotaOperations } from '../control-plane/quotas.ts';
import type { TenantQuota } from '../layers/shared/src/contracts/quotas.ts';
import { quantile } from './stats.ts';

export interface QuietFigures {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly perSecond: number;
  /** Answers other than 200. */
  readonly failed: number;
}

export interface NoisyNeighbourFigures {
  readonly seconds: number;
  readonly floodConcurrency: number;
  readonly quota: TenantQuota;
  readonly flood: { readonly answers: number; readonly refused: number; readonly admitted: number; readonly other: number };
  readonly quiet: ReadonlyArray<{ readonly where: 'same cell' | 'other cell'; readonly before: QuietFigures; readonly during: QuietFigures }>;
}

export interface NoisyNeighbourTarget {
  readonly url: string;
  readonly stateFile: string;
  readonly cells: readonly string[];
  /** The cell the bucket map gives a tenant. */
  readonly cellOf: (tenantId: string) => string;
  readonly token: (tenantId: string) => Promise<string>;
}

/** A tenant id whose bucket maps to `cellId`. */
function tenantIn(target: NoisyNeighbourTarget, cellId: string, prefix: string): string {
  for (let n = 0; ; n += 1) if (target.cellOf(`${prefix}-${n}`) === cellId) return `${prefix}-${n}`;
}

export async function benchNoisyNeighbour(
  target: NoisyNeighbourTarget,
  options: { seconds: number; floodConcurrency: number; quota: TenantQuota; say: (line: string) => void },
): Promise<NoisyNeighbourFigures> {
  const [home, away] = target.cells;
  if (!home || !away) throw new Error('the noisy-neighbour bench needs two cells');
  const noisy = tenantIn(target, home, 'noisy');
  const quiet = [
    { where: 'same cell' as const, tenantId: tenantIn(target, home, 'quiet') },
    { where: 'other cell' as const, tenantId: tenantIn(target, away, 'quiet') },
  ];
  const connection = connectLocal(target.stateFile);
  try {
    await new QuotaOperations({ store: connection.store, defaultQuota: options.quota, by: 'npm run bench' }).set(noisy, options.quota);
  } finally {
    connection.close();
  }
  const tokens = new Map<string, string>();
  for (const tenantId of [noisy, ...quiet.map((q) => q.tenantId)]) tokens.set(tenantId, await target.token(tenantId));
  const get = async (tenantId: string) => {
    const response = await fetch(`${target.url}/tenants/${tenantId}/items`, { headers: { authorization: `Bearer ${tokens.get(tenantId)}` } });
    await response.arrayBuffer();
    return response.status;
  };
  /** Each quiet tenant one GET at a time until `until`. */
  const quietly = async (until: number) =>
    Promise.all(
      quiet.map(async ({ tenantId }) => {
        const latencies: number[] = [];
        let failed = 0;
        const started = performance.now();
        while (performance.now() < until) {
          const t0 = performance.now();
          if ((await get(tenantId)) !== 200) failed += 1;
          latencies.push(performance.now() - t0);
        }
        const seconds = (performance.now() - started) / 1000;
        return { p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), perSecond: latencies.length / seconds, failed };
      }),
    );
  // The router's instances take the quota at their next refresh: the quiet run before the flood lasts longer than that in full runs.
  options.say(`  quiet tenants alone for ${options.seconds} s`);
  const before = await quietly(performance.now() + options.seconds * 1000);
  options.say(`  ${options.floodConcurrency} requests of one tenant in flight for ${options.seconds} s, the quiet tenants beside it`);
  const until = performance.now() + options.seconds * 1000;
  const flood = { answers: 0, refused: 0, admitted: 0, other: 0 };
  const flooding = Promise.all(
    Array.from({ length: options.floodConcurrency }, async () => {
      while (performance.now() < until) {
        const status = await get(noisy);
        flood.answers += 1;
        if (status === 429) flood.refused += 1;
        else if (status === 200) flood.admitted += 1;
        else flood.other += 1;
      }
    }),
  );
  const during = await quietly(until);
  await flooding;
  return {
    seconds: options.seconds,
    floodConcurrency: options.floodConcurrency,
    quota: options.quota,
    flood,
    quiet: quiet.map(({ where }, i) => ({ where, before: before[i]!, during: during[i]! })),
  };
}
