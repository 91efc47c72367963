import * as z from 'zod';

const envSchema = z.object({
  CONTROL_PLANE_TABLE: z.string().min(1, 'CONTROL_PLANE_TABLE must name the control-plane table'),
  ROUTING_REFRESH_SECONDS: z.coerce.number().positive('ROUTING_REFRESH_SECONDS must be a positive number').default(10),
  SHIPPED_ROUTING: z.string().min(1, 'SHIPPED_ROUTING must hold the routing shipped with the deploy'),
});

export interface RouterConfig {
  readonly controlPlaneTable: string;
  readonly refreshMs: number;
  /** JSON; see snapshotFromShipped. */
  readonly shippedRouting: string;
}

export function loadRouterConfig(env: NodeJS.ProcessEnv): RouterConfig {
  const result = envSchema.safeParse(env);
  if (!result.success) throw new Error(result.error.issues.map((issue) => issue.message).join('; '));
  return {
    controlPlaneTable: result.data.CONTROL_PLANE_TABLE,
    refreshMs: result.data.ROUTING_REFRESH_SECONDS * 1000,
    shippedRouting: result.data.SHIPPED_ROUTING,
  };
}
