import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AwsApi } from '../../../functions/router/aws-api.ts';
import { TenantQuotas } from '../../../functions/router/quotas.ts';
import { type FleetCount, type FleetStore, FleetTable, RouterFleet } from '../../../functions/router/router-fleet.ts';
import { CONTROL_PLANE_READ } from '../../../layers/shared/src/sdk-timeouts.ts';
import { awsEnv } from '../../support/aws-api.ts';
import { createCellTable } from '../../support/tables.ts';

/** Heartbeats in memory, as the fleet table keeps them. */
function memoryStore() {
  const beats = new Map<string, { expiresAtMs: number; tenants: readonly string[] }>();
  let failing: Error | undefined;
  const store: FleetStore = {
    beat: async (instanceId, expiresAtMs, tenants) => {
      if (failing) throw failing;
      beats.set(instanceId, { expiresAtMs, tenants });
    },
    count: async (nowMs): Promise<FleetCount> => {
      const live = [...beats.values()].filter((beat) => beat.expiresAtMs > nowMs);
      const servers = new Map<string, number>();
      for (const beat of live) for (const tenantId of beat.tenants) servers.set(tenantId, (servers.get(tenantId) ?? 0) + 1);
      return { instances: live.length, servers };
    },
  };
  return { store, beats, fail: (error?: Error) => (failing = error) };
}

/** A router instance: its buckets, and its place in the fleet. */
function instance(store: FleetStore, name: string, clock: { now: number }) {
  const buckets: TenantQuotas = new TenantQuotas({ share: (tenantId) => fleet.shareOf(tenantId), now: () => clock.now });
  const fleet: RouterFleet = new RouterFleet({
    store,
    instanceId: name,
    now: () => clock.now,
    activity: (seconds, n) => buckets.takeActivity(seconds, n),
    busy: (tenantId, n) => buckets.isBusy(tenantId, n),
  });
  return { buckets, fleet };
}

describe('RouterFleet', () => {
  const quota = { rate: 100, burst: 200 };

  it('gives a tenant served by one instance its whole quota there, however many instances run', async () => {
    const clock = { now: 1_000_000 };
    const { store } = memoryStore();
    const fleet = Array.from({ length: 8 }, (_, i) => instance(store, `r${i}`, clock));
    for (const { fleet: f } of fleet) await f.beat();
    // One client, one request after another, all on the same instance (as Lambda reuses the warm one): 20 a second for a minute.
    let admitted = 0;
    for (let n = 0; n < 1_200; n += 1) {
      clock.now += 50;
      if (fleet[0]!.buckets.admit('steady', quota).admitted) admitted += 1;
      if (n % 200 === 0) for (const { fleet: f } of fleet) await f.beat();
    }
    expect(admitted).toBe(1_200);
    expect(fleet[0]!.fleet.shareOf('steady')).toBe(1);
  });

  it('holds a tenant spread over many instances to its quota together, each enforcing 1/k of it', async () => {
    const clock = { now: 1_000_000 };
    const { store } = memoryStore();
    const fleet = Array.from({ length: 8 }, (_, i) => instance(store, `r${i}`, clock));
    let admitted = 0;
    const seconds = 60;
    // 3 times the rate, round-robin over the instances; every instance beats every 10 s.
    const offered = quota.rate * 3 * seconds;
    for (let n = 0; n < offered; n += 1) {
      clock.now = 1_000_000 + (n / offered) * seconds * 1000;
      if (fleet[n % 8]!.buckets.admit('flood', quota).admitted) admitted += 1;
      if (n % (quota.rate * 3 * 10) === 0) for (const { fleet: f } of fleet) await f.beat();
    }
    expect(fleet[3]!.fleet.shareOf('flood')).toBe(1 / 8);
    // The first beat's 10 s are enforced at the whole quota per instance (nothing reported yet); after that, 1/8 each.
    const firstBeat = 8 * (quota.rate * 10 + quota.burst);
    expect(admitted).toBeLessThanOrEqual(firstBeat + quota.rate * (seconds - 10) + quota.burst + 8);
    expect(admitted).toBeGreaterThanOrEqual(0.9 * quota.rate * seconds);
  });

  it('holds a new flood to its quota within seconds, not a whole beat: a busy instance serving an unreported tenant beats early', async () => {
    const clock = { now: 1_000_000 };
    const { store } = memoryStore();
    const fleet = Array.from({ length: 8 }, (_, i) => instance(store, `r${i}`, clock));
    for (const { fleet: f } of fleet) await f.beat();
    // 10 times the rate, round-robin over the 8 instances, for 10 s: less than one regular beat.
    const seconds = 10;
    const offered = quota.rate * 10 * seconds;
    const admittedBySecond = Array<number>(seconds).fill(0);
    for (let n = 0; n < offered; n += 1) {
      clock.now = 1_000_000 + 1 + (n / offered) * seconds * 1000;
      if (fleet[n % 8]!.buckets.admit('flood', quota).admitted) admittedBySecond[Math.floor((n / offered) * seconds)]! += 1;
      // Let the heartbeats started in the background of these requests land.
      if (n % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(fleet[5]!.fleet.shareOf('flood')).toBe(1 / 8);
    // Without early beats every instance would admit the whole rate for the 10 s (8 × 100 a second); from the third second on, the fleet admits about the quota.
    for (const admitted of admittedBySecond.slice(3)) expect(admitted).toBeLessThanOrEqual(quota.rate + 8);
  });

  it('beats at most once per interval, in the background of a request, and keeps the last count when a beat fails', async () => {
    const clock = { now: 0 };
    const { store, beats, fail } = memoryStore();
    const errors: unknown[] = [];
    const fleet = new RouterFleet({ store, instanceId: 'me', beatMs: 10_000, lifeMs: 30_000, now: () => clock.now, onError: (e) => errors.push(e) });
    fleet.shareOf('t');
    await fleet.beat();
    expect(beats.get('me')?.expiresAtMs).toBe(30_000);
    clock.now += 9_999;
    fleet.shareOf('t');
    expect(beats.get('me')?.expiresAtMs).toBe(30_000);
    fail(new Error('throttled'));
    clock.now += 1;
    await fleet.beat();
    expect([fleet.instances(), String(errors[0])]).toEqual([1, 'Error: throttled']);
  });
});

describe('FleetTable', () => {
  let table: Awaited<ReturnType<typeof createCellTable>>;
  beforeAll(async () => {
    table = await createCellTable(inject('dynamoEndpoint'), 'fleet');
  });
  afterAll(() => table.drop());

  it('counts the instances whose heartbeat is alive, each once however often it beats, and who serves which tenant', async () => {
    const fleet = new FleetTable(new AwsApi('dynamodb', CONTROL_PLANE_READ, awsEnv('dynamodb', inject('dynamoEndpoint'))), table.tableName);
    const now = 1_800_000_000_000;
    await fleet.beat('a', now + 30_000, ['busy']);
    await fleet.beat('a', now + 40_000, ['busy', 'other']);
    await fleet.beat('b', now + 30_000, ['busy']);
    await fleet.beat('gone', now - 1_000, ['busy']);
    expect(await fleet.count(now)).toEqual({
      instances: 2,
      servers: new Map([
        ['busy', 2],
        ['other', 1],
      ]),
    });
    expect((await fleet.count(now + 35_000)).instances).toBe(1);
  });
});
