import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { policyField, TenantQuotas } from '../../../functions/router/quotas.ts';
import { quotaProblem } from '../../../layers/shared/src/contracts/quotas.ts';

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
   * The error bound (docs/design/operations.md, "Per-tenant quotas in the router"): n instances, each
   * enforcing 1/n of a quota (rate r, burst b), admit over T seconds at most
   * r·T + b + n (each instance's bucket holds at least one token), and, while
   * every instance is offered more than its share, at least r·T less what
   * uneven spreading leaves unused, which the test bounds at 10 %.
   */
  it.each([1, 10, 100])('holds a quota of 100/s together across %i instances within the stated bound', (instances) => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 2 }), fc.constantFrom(3, 10), (seed, overload) => {
        const quota = { rate: 100, burst: 200 };
        const seconds = 30;
        let now = 0;
        const fleet = Array.from({ length: instances }, () => new TenantQuotas({ now: () => now, share: () => 1 / instances }));
        // A Lehmer generator: its seed must lie in [1, modulus - 1], or every draw is 0.
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
    [{ rate: 10, burst: 5 }, "burst (5) must be at least the rate (10): a second's worth of requests must fit"],
  ])('refuses %o', (quota, problem) => {
    expect(quotaProblem(quota)).toBe(problem);
  });

  it('takes a quota within the bounds', () => {
    expect(quotaProblem({ rate: 1, burst: 1 })).toBeUndefined();
    expect(quotaProblem({ rate: 100_000, burst: 1_000_000 })).toBeUndefined();
  });
});
