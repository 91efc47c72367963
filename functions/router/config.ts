import { parseEnvironment, tokenVerifierOptionsFromEnv, type TokenVerifierOptions } from '@item-master/shared';
import * as z from 'zod';

const envSchema = z.object({
  CONTROL_PLANE_TABLE: z.string().min(1),
  ROUTING_REFRESH_SECONDS: z.coerce.number().positive().default(10),
  SHIPPED_ROUTING: z.string().min(1),
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
    auth: tokenVerifierOptionsFromEnv(env),
  };
}
