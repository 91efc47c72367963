/**
 * What a token may grant, shared by the identity provider (lib/identity.ts),
 * the token check (auth.ts), the route table and the operator's tools. A
 * leaf module: no imports.
 */

/** The scopes of the service's resource server; a token carries them as `<resource server>/<scope>`. */
export const SCOPES = ['items.read', 'items.write', 'orders.write'] as const;
export type Scope = (typeof SCOPES)[number];

/** The access-token claim that binds a client to its tenant (added at issuance, never by the client). */
export const TENANT_CLAIM = 'tenant_id';
