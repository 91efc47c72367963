import type { TenantQuota } from '@item-master/shared/contracts/quotas';
import QuickLRU from 'quick-lru';

/**
 * Tenants whose bucket a router instance keeps: past this many, the least
 * recently seen is dropped, and comes back full (a tenant quiet for that
 * long has refilled anyway). About 100 bytes each: at most some 2 MB.
 */
export const QUOTA_BUCKETS = 10_000;

export interface QuotaDecision {
  readonly admitted: boolean;
  /** The IETF draft's `RateLimit-Policy` and `RateLimit` fields, and `Retry-After` on a refusal. */
  readonly headers: Record<string, string>;
}

interface Bucket {
  tokens: number;
  at: number;
}

export interface TenantQuotasOptions {
  /**
   * This instance's part of a tenant's quota, from 0 to 1: the router's
   * instances that serve a tenant enforce its quota together, each a share
   * of it (router-fleet.ts).
   * @default () => 1
   */
  readonly share?: (tenantId: string) => number;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default QUOTA_BUCKETS */
  readonly maxTenants?: number;
}

/**
 * Per-tenant token buckets in one router instance. With `share` s, the
 * instance's bucket holds s × burst tokens (at least one, so that a tenant
 * is never refused by an instance for the instance's own sake) refilled at
 * s × rate a second. A request takes a token or is refused; nothing is
 * called remotely. It also counts what it admitted of each tenant since
 * the last `takeActivity`, which the fleet's heartbeat reports.
 */
export class TenantQuotas {
  private readonly buckets: QuickLRU<string, Bucket>;
  private readonly share: (tenantId: string) => number;
  private readonly now: () => number;
  private activity = new Map<string, { admitted: number; rate: number }>();

  constructor(options: TenantQuotasOptions = {}) {
    this.buckets = new QuickLRU({ maxSize: options.maxTenants ?? QUOTA_BUCKETS });
    this.share = options.share ?? (() => 1);
    this.now = options.now ?? Date.now;
  }

  admit(tenantId: string, quota: TenantQuota): QuotaDecision {
    const share = Math.min(1, Math.max(Number.MIN_VALUE, this.share(tenantId)));
    const rate = quota.rate * share;
    const capacity = Math.max(1, quota.burst * share);
    const now = this.now();
    const bucket = this.buckets.get(tenantId) ?? { tokens: capacity, at: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.buckets.set(tenantId, bucket);
    const admitted = bucket.tokens >= 1;
    if (admitted) {
      bucket.tokens -= 1;
      const seen = this.activity.get(tenantId);
      if (seen) seen.admitted += 1;
      else if (this.activity.size < QUOTA_BUCKETS) this.activity.set(tenantId, { admitted: 1, rate: quota.rate });
    }
    // What the tenant has left, told as the whole quota's (this instance's whole tokens, scaled up by its share), and when the next request fits.
    const remaining = Math.floor(Math.floor(bucket.tokens) / share);
    const resetSeconds = bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / rate);
    const headers: Record<string, string> = {
      'ratelimit-policy': policyField(quota),
      ratelimit: `"tenant";r=${remaining};t=${resetSeconds}`,
    };
    if (!admitted) headers['retry-after'] = String(Math.max(1, resetSeconds));
    return { admitted, headers };
  }

  /** Whether this instance admitted more of the tenant since the last `takeActivity` than its share of one second's quota. */
  isBusy(tenantId: string, instances: number): boolean {
    const seen = this.activity.get(tenantId);
    return seen !== undefined && seen.admitted > seen.rate / Math.max(1, instances);
  }

  /**
   * The tenants this instance served a fair share of since the last call:
   * at least `rate × seconds ÷ instances` requests admitted (so a tenant
   * spread thinly over many instances is still reported by each), the
   * busiest `max` of them. The counts start again.
   */
  takeActivity(seconds: number, instances: number, max = ACTIVE_TENANTS_REPORTED): string[] {
    const taken = this.activity;
    this.activity = new Map();
    return [...taken]
      .filter(([, { admitted, rate }]) => admitted >= Math.max(1, (rate * seconds) / Math.max(1, instances)))
      .sort(([, a], [, b]) => b.admitted - a.admitted)
      .slice(0, max)
      .map(([tenantId]) => tenantId);
  }
}

/** The most tenants one heartbeat reports: it keeps the item, and the fleet's count of it, small. */
export const ACTIVE_TENANTS_REPORTED = 100;

/**
 * The quota as the draft's policy: `burst` requests in the window it takes
 * the bucket to refill from empty (burst ÷ rate seconds, at least one).
 */
export function policyField(quota: TenantQuota): string {
  return `"tenant";q=${quota.burst};w=${Math.max(1, Math.round(quota.burst / quota.rate))}`;
}
