import { tokenVerifierOptionsFromEnv, type TokenVerifierOptions } from '@item-master/shared';
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
  const result = envSchema.safeParse(env);
  if (!result.success) {
    throw new Error(`router environment: ${result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  return {
    controlPlaneTable: result.data.CONTROL_PLANE_TABLE,
    refreshMs: result.data.ROUTING_REFRESH_SECONDS * 1000,
    shippedRouting: result.data.SHIPPED_ROUTING,
    auth: tokenVerifierOptionsFromEnv(env),
  };
}
