import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AwsApi } from '../../functions/router/aws-api.ts';
import { policyField, TenantQuotas } from '../../functions/router/quotas.ts';
import { FleetTable, RouterFleet, type FleetStore } from '../../functions/router/router-fleet.ts';
import { quotaProblem } from '../../layers/shared/src/contracts/quotas.ts';
import { CONTROL_PLANE_READ } from '../../layers/shared/src/sdk-timeouts.ts';
import { awsEnv } from '../support/aws-api.ts';
import { createCellTable } from '../support/tables.ts';

describe('TenantQuotas', () => {
  it('lets a burst through, then one request per 1/rate seconds, and tells the client when to come back', () => {
    let now = 0;
    const quotas = new TenantQuotas({ now: () => now });
    const quota = { rate: 4, burst: 8 };
    const burst = Array.from({ length: 10 }, () => quotas.admit('t', quota).admitted);
    expect(burst).toEqual([...Array(8).fill(true), false, false]);
    expect(quotas.admit('t', quota).headers).toEqual({ 'ratelimit-policy': '"tenant";q=8;w=2', ratelimit: '"tenant";r=0;t=1', 'retry-after': '1' });
    now += 250;
    expect(quotas.admit('t', quota)).toMatchObject({ admitted: true, headers: { ratelimit: '"tenant";r=0;t=1' } });
    expect(quotas.admit('t', quota).admitted).toBe(false);
    // A quiet minute refills the bucket to its burst, no further.
    now += 60_000;
    expect(Array.from({ length: 9 }, () => quotas.admit('t', quota).admitted).filter(Boolean)).toHaveLength(8);
  });

  it('keeps a bucket per tenant, and drops the least recently seen past its bound (it comes back full)', () => {
    const quotas = new TenantQuotas({ now: () => 0, maxTenants: 2 });
    const quota = { rate: 1, burst: 1 };
    expect(quotas.admit('a', quota).admitted).toBe(true);
    expect(quotas.admit('a', quota).admitted).toBe(false);
    expect(quotas.admit('b', quota).admitted).toBe(true);
    for (const tenantId of ['c', 'd', 'e']) quotas.admit(tenantId, quota);
    expect(quotas.admit('a', quota).admitted).toBe(true);
  });

  it('describes a quota as burst requests in the window a bucket takes to refill', () => {
    expect(policyField({ rate: 100, burst: 100 })).toBe('"tenant";q=100;w=1');
    expect(policyField({ rate: 10, burst: 600 })).toBe('"tenant";q=600;w=60');
  });

  /**
   * The error bound (docs/design-notes.md, "Tenant quotas"): n instances, each
   * enforcing 1/n of a quota (rate r, burst b), admit over T seconds at most
   * r·T + b + n (each instance's bucket holds at least one token), and, while
   * every instance is offered more than its share, at least r·T less what
   * uneven spreading leaves unused, which the test bounds at 10 %.
   */
  it.each([1, 10, 100])('holds a quota of 100/s together across %i instances within the stated bound', (instances) => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom(3, 10), (seed, overload) => {
        const quota = { rate: 100, burst: 200 };
        const seconds = 30;
        let now = 0;
        const fleet = Array.from({ length: instances }, () => new TenantQuotas({ now: () => now, share: () => 1 / instances }));
        let random = seed;
        const next = () => (random = (random * 48_271) % 2_147_483_647) / 2_147_483_647;
        const offered = quota.rate * overload * seconds;
        let admitted = 0;
        for (let n = 0; n < offered; n += 1) {
          now = (n / offered) * seconds * 1000;
          if (fleet[Math.floor(next() * instances)]!.admit('busy', quota).admitted) admitted += 1;
        }
        expect(admitted).toBeLessThanOrEqual(quota.rate * seconds + quota.burst + instances);
        expect(admitted).toBeGreaterThanOrEqual(0.9 * quota.rate * seconds);
      }),
      { numRuns: 5 },
    );
  });
});

describe('quotaProblem', () => {
  it.each([
    [{ rate: 0, burst: 10 }, 'rate must be a whole number from 1 to 100,000, not 0'],
    [{ rate: -5, burst: 10 }, 'rate must be a whole number from 1 to 100,000, not -5'],
    [{ rate: 2.5, burst: 10 }, 'rate must be a whole number from 1 to 100,000, not 2.5'],
    [{ rate: 1e9, burst: 1e9 }, 'rate must be a whole number from 1 to 100,000, not 1000000000'],
    [{ rate: 10, burst: 1e7 }, 'burst must be a whole number from 1 to 1,000,000, not 10000000'],
    [{ rate: 10, burst: 5 }, 'burst (5) must be at least the rate (10): a second\'s worth of requests must fit'],
  ])('refuses %o', (quota, problem) => {
    expect(quotaProblem(quota)).toBe(problem);
  });

  it('takes a quota within the bounds', () => {
    expect(quotaProblem({ rate: 1, burst: 1 })).toBeUndefined();
    expect(quotaProblem({ rate: 100_000, burst: 1_000_000 })).toBeUndefined();
  });
});

describe('RouterFleet', () => {
  function fakeStore(counts: Array<number | Error>) {
    const beats: Array<[string, number]> = [];
    const store: FleetStore = {
      beat: async (instanceId, expiresAtMs) => void beats.push([instanceId, expiresAtMs]),
      count: async () => {
        const next = counts.shift() ?? 1;
        if (next instanceof Error) throw next;
        return next;
      },
    };
    return { store, beats };
  }

  it("gives each instance 1/n of every quota, counting at most once per beat interval, in the request's background", async () => {
    let now = 1_000;
    const { store, beats } = fakeStore([4, 8]);
    const fleet = new RouterFleet({ store, instanceId: 'me', beatMs: 10_000, lifeMs: 30_000, now: () => now });
    expect(fleet.share()).toBe(1);
    await fleet.beat();
    expect(fleet.share()).toBe(1 / 4);
    now += 9_999;
    expect(fleet.share()).toBe(1 / 4);
    expect(beats).toEqual([['me', 31_000]]);
    now += 1;
    fleet.share();
    await fleet.beat();
    expect(fleet.share()).toBe(1 / 8);
    expect(beats).toHaveLength(2);
  });

  it('keeps the last count when a beat fails, and says so', async () => {
    const errors: unknown[] = [];
    let now = 0;
    const { store } = fakeStore([5, new Error('throttled')]);
    const fleet = new RouterFleet({ store, beatMs: 1, now: () => now, onError: (error) => errors.push(error) });
    await fleet.beat();
    now += 1;
    await fleet.beat();
    expect([fleet.instances(), String(errors[0])]).toEqual([5, 'Error: throttled']);
  });
});

describe('FleetTable', () => {
  let table: Awaited<ReturnType<typeof createCellTable>>;
  beforeAll(async () => {
    table = await createCellTable(inject('dynamoEndpoint'), 'fleet');
  });
  afterAll(() => table.drop());

  it('counts the instances whose heartbeat is alive, each once however often it beats', async () => {
    const fleet = new FleetTable(new AwsApi('dynamodb', CONTROL_PLANE_READ, awsEnv('dynamodb', inject('dynamoEndpoint'))), table.tableName);
    const now = 1_800_000_000_000;
    await fleet.beat('a', now + 30_000);
    await fleet.beat('a', now + 40_000);
    await fleet.beat('b', now + 30_000);
    await fleet.beat('gone', now - 1_000);
    expect(await fleet.count(now)).toBe(2);
    expect(await fleet.count(now + 35_000)).toBe(1);
  });
});
