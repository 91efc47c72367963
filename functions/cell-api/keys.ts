/**
 * Single-table key design of a cell table. Everything of one tenant shares a
 * partition key, so a tenant's items and orders are one item collection:
 *
 * | entity | pk                 | sk                 |
 * | ------ | ------------------ | ------------------ |
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
 */
export const PK = 'pk';
export const SK = 'sk';

const ITEM_PREFIX = 'ITEM#';

export function tenantKey(tenantId: string): string {
  return `TENANT#${tenantId}`;
}

export function itemKey(tenantId: string, itemId: string): { pk: string; sk: string } {
  return { pk: tenantKey(tenantId), sk: `${ITEM_PREFIX}${itemId}` };
}

export const ITEM_SK_PREFIX = ITEM_PREFIX;
