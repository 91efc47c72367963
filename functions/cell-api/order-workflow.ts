import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { itemKey, tenantKey } from './keys.ts';

export interface OrderLine {
  readonly itemId: string;
  readonly quantity: number;
}

/**
 * What the order workflow starts with. The stock transactions are built here,
 * in code, because the workflow's JSONPath cannot map lines to transaction
 * items; the workflow passes them to DynamoDB untouched.
 */
export interface OrderWorkflowInput {
  readonly tenantId: string;
  readonly orderId: string;
  readonly payment: { readonly token: string };
  /** Decrements each line's stock, on the condition that enough is left. */
  readonly reservation: { readonly TransactItems: TransactWriteItem[] };
  /** Gives each line's stock back: the compensation of the reservation. */
  readonly release: { readonly TransactItems: TransactWriteItem[] };
}

/** A transaction writes at most 100 items; one line per distinct item. */
export const MAX_ORDER_ITEMS = 100;

export function orderKey(tenantId: string, orderId: string): { pk: string; sk: string } {
  return { pk: tenantKey(tenantId), sk: `ORDER#${orderId}` };
}

/** Lines of the same item become one (a transaction may touch an item once), in first-seen order. */
export function mergeLines(lines: readonly OrderLine[]): OrderLine[] {
  const merged = new Map<string, number>();
  for (const { itemId, quantity } of lines) merged.set(itemId, (merged.get(itemId) ?? 0) + quantity);
  return [...merged].map(([itemId, quantity]) => ({ itemId, quantity }));
}

export function orderWorkflowInput(
  tableName: string,
  order: { tenantId: string; orderId: string; lines: readonly OrderLine[]; paymentToken: string },
): OrderWorkflowInput {
  const lines = mergeLines(order.lines);
  if (lines.length === 0 || lines.length > MAX_ORDER_ITEMS) throw new RangeError(`an order has 1 to ${MAX_ORDER_ITEMS} distinct items`);
  const stockUpdate = (line: OrderLine, sign: '-' | '+', condition: string): TransactWriteItem => {
    const { pk, sk } = itemKey(order.tenantId, line.itemId);
    return {
      Update: {
        TableName: tableName,
        Key: { pk: { S: pk }, sk: { S: sk } },
        // Stock is part of the item: its version moves, so If-Match writers see the change.
        UpdateExpression: `SET stock = stock ${sign} :quantity, #version = #version + :one`,
        ConditionExpression: condition,
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':quantity': { N: String(line.quantity) }, ':one': { N: '1' } },
      },
    };
  };
  return {
    tenantId: order.tenantId,
    orderId: order.orderId,
    payment: { token: order.paymentToken },
    reservation: { TransactItems: lines.map((line) => stockUpdate(line, '-', 'attribute_exists(pk) AND stock >= :quantity')) },
    release: { TransactItems: lines.map((line) => stockUpdate(line, '+', 'attribute_exists(pk)')) },
  };
}
