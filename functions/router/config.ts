import { tokenVerifierOptionsFromEnv, type TokenVerifierOptions } from '@item-master/shared/auth';
import type { TenantQuota } from '@item-master/shared/contracts/quotas';
import { parseEnvironment } from '@item-master/shared/environment';
import '@item-master/shared/validation';
import * as z from 'zod/mini';

const envSchema = z.object({
  CONTROL_PLANE_TABLE: z.string().check(z.minLength(1)),
  ROUTING_REFRESH_SECONDS: z._default(z.coerce.number().check(z.positive()), 10),
  SHIPPED_ROUTING: z.string().check(z.minLength(1)),
  TOKEN_CACHE_SIZE: z._default(z.coerce.number().check(z.int(), z.nonnegative()), 10_000),
  FLEET_TABLE: z.string().check(z.minLength(1)),
  TENANT_RATE: z.coerce.number().check(z.int(), z.positive()),
  TENANT_BURST: z.coerce.number().check(z.int(), z.positive()),
});

export interface RouterConfig {
  readonly controlPlaneTable: string;
  readonly refreshMs: number;
  /** JSON; see snapshotFromShipped. */
  readonly shippedRouting: string;
  readonly auth: TokenVerifierOptions;
  /** Where the instances' heartbeats go (router-fleet.ts). */
  readonly fleetTable: string;
  /** Every tenant's quota unless the control plane holds its own. */
  readonly defaultQuota: TenantQuota;
}

export function loadRouterConfig(env: NodeJS.ProcessEnv): RouterConfig {
  const parsed = parseEnvironment('router', envSchema, env);
  return {
    controlPlaneTable: parsed.CONTROL_PLANE_TABLE,
    refreshMs: parsed.ROUTING_REFRESH_SECONDS * 1000,
    shippedRouting: parsed.SHIPPED_ROUTING,
    auth: { ...tokenVerifierOptionsFromEnv(env), cachedTokens: parsed.TOKEN_CACHE_SIZE },
    fleetTable: parsed.FLEET_TABLE,
    defaultQuota: { rate: parsed.TENANT_RATE, burst: parsed.TENANT_BURST },
  };
}
