import { quotaProblem, type TenantQuota } from '../layers/shared/src/contracts/quotas.ts';
import { ID_RULE, isValidId } from '../layers/shared/src/ids.ts';
import { InvalidInputError } from './errors.ts';
import type { QuotaOverride } from '../routing/records.ts';
import type { ControlPlaneStore } from './store.ts';

/** A tenant's quota in force: its own, or config's default. */
export interface EffectiveQuota extends TenantQuota {
  readonly tenantId: string;
  readonly source: 'override' | 'default';
  readonly updatedAt?: string;
  readonly by?: string;
}

export interface QuotaOperationsDeps {
  readonly store: Pick<ControlPlaneStore, 'getQuota' | 'listQuotas' | 'setQuota' | 'unsetQuota'>;
  /** Config's `tenantRate` and `tenantBurst`. */
  readonly defaultQuota: TenantQuota;
  /** Who changes a quota, recorded with it. */
  readonly by: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/**
 * The operator's per-tenant quotas (`cells quota`, the console): overrides
 * of config's default, kept in the control plane and read by the router with
 * the routing data, so a change is in force within the routing refresh.
 * Bad input is refused before anything is written.
 */
export class QuotaOperations {
  constructor(private readonly deps: QuotaOperationsDeps) {}

  async set(tenantId: string, quota: TenantQuota): Promise<QuotaOverride> {
    checkTenant(tenantId);
    const problem = quotaProblem(quota);
    if (problem) throw new InvalidInputError(problem);
    const override: QuotaOverride = {
      tenantId,
      rate: quota.rate,
      burst: quota.burst,
      updatedAt: (this.deps.now?.() ?? new Date()).toISOString(),
      by: this.deps.by,
    };
    await this.deps.store.setQuota(override);
    return override;
  }

  async get(tenantId: string): Promise<EffectiveQuota> {
    checkTenant(tenantId);
    const own = await this.deps.store.getQuota(tenantId);
    return own ? { ...own, source: 'override' } : { tenantId, ...this.deps.defaultQuota, source: 'default' };
  }

  list(): Promise<QuotaOverride[]> {
    return this.deps.store.listQuotas();
  }

  /** Back to the default; refused (NoQuotaOverrideError) for a tenant that has none of its own. */
  unset(tenantId: string): Promise<QuotaOverride> {
    checkTenant(tenantId);
    return this.deps.store.unsetQuota(tenantId);
  }
}

function checkTenant(tenantId: string): void {
  if (!isValidId(tenantId)) throw new InvalidInputError(`tenant id ${JSON.stringify(tenantId)} ${ID_RULE}`);
}
