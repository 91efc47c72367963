import { tokenVerifierOptionsFromEnv, type TokenVerifierOptions } from '@item-master/shared/auth';
import { parseEnvironment } from '@item-master/shared/environment';
import '@item-master/shared/validation';
import * as z from 'zod/mini';

const envSchema = z.object({
  CONTROL_PLANE_TABLE: z.string().check(z.minLength(1)),
  ROUTING_REFRESH_SECONDS: z._default(z.coerce.number().check(z.positive()), 10),
  SHIPPED_ROUTING: z.string().check(z.minLength(1)),
  TOKEN_CACHE_SIZE: z._default(z.coerce.number().check(z.int(), z.nonnegative()), 10_000),
});

export interface RouterConfig {
  readonly controlPlaneTable: string;
  readonly refreshMs: number;
  /** JSON; see snapshotFromShipped. */
  readonly shippedRouting: string;
  readonly auth: TokenVerifierOptions;
}

export function loadRouterConfig(env: NodeJS.ProcessEnv): RouterConfig {
  const parsed = parseEnvironment('router', envSchema, env);
  return {
    controlPlaneTable: parsed.CONTROL_PLANE_TABLE,
    refreshMs: parsed.ROUTING_REFRESH_SECONDS * 1000,
    shippedRouting: parsed.SHIPPED_ROUTING,
    auth: { ...tokenVerifierOptionsFromEnv(env), cachedTokens: parsed.TOKEN_CACHE_SIZE },
  };
}
