import type { TokenVerifierOptions } from '@item-master/shared';
import * as z from 'zod';

const envSchema = z.object({
  CONTROL_PLANE_TABLE: z.string().min(1),
  ROUTING_REFRESH_SECONDS: z.coerce.number().positive().default(10),
  SHIPPED_ROUTING: z.string().min(1),
  USER_POOL_ID: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d_[A-Za-z0-9]+$/, 'must be a Cognito user pool id'),
  AUTH_RESOURCE_SERVER: z.string().min(1),
  // The AWS SDK's own per-service endpoint variable: set by the local runtime only.
  AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: z.url().optional(),
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
    auth: {
      userPoolId: result.data.USER_POOL_ID,
      resourceServer: result.data.AUTH_RESOURCE_SERVER,
      endpoint: result.data.AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER,
    },
  };
}
