/** Tenant, item and order ids: 1 to 128 of `[A-Za-z0-9._-]`. */
export const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

export const ID_RULE = 'must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_" or "-"';

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value);
}

const TENANT_PATH = /^\/tenants\/([^/]+)(?:\/|$)/;

/** The tenant segment of a `/tenants/{tenantId}/…` path, as sent (not yet validated). */
export function tenantIdOf(path: string): string | undefined {
  return TENANT_PATH.exec(path)?.[1];
}
