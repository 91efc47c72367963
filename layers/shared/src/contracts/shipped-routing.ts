/**
 * The routing the deploy ships in the router's environment, written by the
 * `Router` construct (lib/router.ts) and read by the router's cache
 * (functions/router/routing-cache.ts) until it has read the control plane
 * once: a cold start while the control plane is unreachable still routes.
 * A leaf module: no imports.
 */

/** The environment variable that holds it, as JSON. */
export const SHIPPED_ROUTING_VARIABLE = 'SHIPPED_ROUTING';

/** Lambda allows 4 KB of environment in all; the shipped routing must leave room for the rest. */
export const MAX_SHIPPED_ROUTING_BYTES = 3_000;

export interface ShippedRouting {
  /** The map version it is a copy of (1: the seed's). */
  readonly version: number;
  /** cellId → the cell API's function name, for every cell the map names. */
  readonly functions: Readonly<Record<string, string>>;
  /** The bucket map, encoded as the control plane stores it (routing/bucket-codec.ts). */
  readonly cells: readonly string[];
  readonly buckets: string;
  /** tenantId → cellId pins. @default {} */
  readonly overrides?: Readonly<Record<string, string>>;
}
