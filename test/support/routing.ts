import { routeTenant, type BucketMap } from '../../routing/routing.ts';

/** The cell a tenant's bucket maps to, overrides aside. */
export const cellOfBucket = (map: BucketMap, tenantId: string): string => routeTenant(map, {}, tenantId).cellId;
