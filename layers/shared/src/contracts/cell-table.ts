/**
 * Single-table key design of a cell table, the one place its prefixes and
 * entity names are spelled: the cell API's stores, the order saga's
 * definition (lib/order-workflow.ts), the change publisher and the control
 * plane's data probe all build keys here. A leaf module: no imports.
 *
 * Everything of one tenant shares a partition key, so a tenant's items and
 * orders are one item collection:
 *
 * | entity | pk                  | sk                 |
 * | ------ | ------------------- | ------------------ |
 * | item   | `TENANT#<tenantId>` | `ITEM#<itemId>`    |
 * | order  | `TENANT#<tenantId>` | `ORDER#<orderId>`  |
 *
 * - Reads and writes of one item are single-key operations; a tenant's items
 *   page in `sk` order with one Query (`begins_with(sk, "ITEM#")`).
 * - An order and the stock it reserves sit in the same collection, so the
 *   order saga's transaction never leaves the tenant (or the cell).
 * - The table has no local secondary index, so an item collection is not
 *   capped at 10 GB, and DynamoDB splits a hot collection across partitions by
 *   sort-key range. The per-item ceiling (1,000 WCU) remains: a single very
 *   hot item is a design limit, not a partition one.
 * - Every record carries `entity`, which is how a reader of the table's
 *   stream tells what changed.
 */

export const TENANT_PREFIX = 'TENANT#';
export const ITEM_SK_PREFIX = 'ITEM#';
export const ORDER_SK_PREFIX = 'ORDER#';

/** The `entity` attribute of each kind of record. */
export const ENTITIES = { item: 'item', order: 'order' } as const;

export function tenantKey(tenantId: string): string {
  return `${TENANT_PREFIX}${tenantId}`;
}

export function itemKey(tenantId: string, itemId: string): { pk: string; sk: string } {
  return { pk: tenantKey(tenantId), sk: `${ITEM_SK_PREFIX}${itemId}` };
}

export function orderKey(tenantId: string, orderId: string): { pk: string; sk: string } {
  return { pk: tenantKey(tenantId), sk: `${ORDER_SK_PREFIX}${orderId}` };
}
