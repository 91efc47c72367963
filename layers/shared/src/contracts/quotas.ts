/**
 * A tenant's request quota at the front door: `rate` requests a second on
 * average, and up to `burst` at once after a quiet spell (a token bucket of
 * `burst` tokens refilled at `rate` a second). The router enforces it before
 * any cell is invoked; the control plane keeps per-tenant overrides of the
 * default that config gives.
 */
export interface TenantQuota {
  readonly rate: number;
  readonly burst: number;
}

/** The bounds of a quota: past them a value is a typo, not a plan (100,000 requests a second is a whole cell's worth). */
export const QUOTA_LIMITS = { rate: { min: 1, max: 100_000 }, burst: { min: 1, max: 1_000_000 } } as const;

/** Why a quota cannot be, in words; undefined for a quota within QUOTA_LIMITS. */
export function quotaProblem(quota: TenantQuota): string | undefined {
  for (const key of ['rate', 'burst'] as const) {
    const { min, max } = QUOTA_LIMITS[key];
    const value = quota[key];
    if (!Number.isInteger(value) || value < min || value > max)
      return `${key} must be a whole number from ${min} to ${max.toLocaleString('en')}, not ${String(value)}`;
  }
  if (quota.burst < quota.rate) return `burst (${quota.burst}) must be at least the rate (${quota.rate}): a second's worth of requests must fit`;
  return undefined;
}
