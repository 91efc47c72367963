/**
 * The connections table's schema, shared by its definition
 * (lib/live-updates.ts), the store the live routes and publishers use
 * (functions/live-socket/connection-store.ts) and the cells' grants. A leaf module:
 * it imports only the cell table's prefixes, which topics reuse.
 */
import { ITEM_SK_PREFIX, tenantKey } from './cell-table.ts';

/*
 * Live-update connections and their subscriptions, in the control plane's
 * connections table:
 *
 * | record       | pk              | sk              | also                                   |
 * | ------------ | --------------- | --------------- | -------------------------------------- |
 * | connection   | `CONN#<id>`     | `CONNECTION`    | tenantId, connectedAt, expiresAt (TTL) |
 * | subscription | `CONN#<id>`     | `TOPIC#<topic>` | tenantId, topic, connectionId, expiresAt (TTL) |
 *
 * A topic is `TENANT#<t>` (everything of the tenant, orders included) or
 * `TENANT#<t>#ITEM#<i>` (one item). The `ByTenant` index (`tenantId`,
 * `topic`, with `connectionId`) holds only subscriptions: one Query finds
 * everything a tenant's connections follow, so a publisher reads a tenant's
 * subscriptions once per batch of changes, however many items changed. A
 * connection's records share its partition, so one Query finds them all to
 * delete. Everything carries the connection's expiry: API Gateway closes a
 * connection after 2 hours, and TTL removes what a lost `$disconnect` left.
 */
/** The index the publishers read; its attributes, for the table's definition. */
export const TENANT_INDEX = { name: 'ByTenant', partitionKey: 'tenantId', sortKey: 'topic', include: ['connectionId'] } as const;
export const TTL_ATTRIBUTE = 'expiresAt';
/** API Gateway's limit on a WebSocket connection's life. */
export const MAX_CONNECTION_SECONDS = 2 * 60 * 60;
/** Items a connection may follow one by one (besides, or instead of, its whole tenant). */
export const MAX_ITEMS_PER_CONNECTION = 100;

export function tenantTopic(tenantId: string): string {
  return tenantKey(tenantId);
}

export function itemTopic(tenantId: string, itemId: string): string {
  return `${tenantKey(tenantId)}#${ITEM_SK_PREFIX}${itemId}`;
}
