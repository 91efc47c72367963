import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { itemKey, RECORD_WRITE_NAMES } from '@item-master/shared';

export interface OrderLine {
  readonly itemId: string;
  readonly quantity: number;
}

/**
 * Which creation of an item an order line takes its stock from, read when
 * the order is placed: the item's `incarnation`, or for an item written
 * before incarnations existed its `createdAt` (both change only when the item
 * is deleted and created again). Undefined when the item did not exist.
 */
export type ItemIncarnation = { readonly incarnation: string } | { readonly createdAt: string };

export interface ReservedLine extends OrderLine {
  readonly from?: ItemIncarnation;
}

/** One line's compensation: its own transaction, so that one item gone cannot keep the others' stock. */
export interface LineRelease {
  readonly itemId: string;
  readonly TransactItems: TransactWriteItem[];
}

/** One line's stock check: the reservation's condition alone, which tells, once the reservation failed, whether this line was short. */
export interface LineCheck {
  readonly itemId: string;
  readonly TransactItems: TransactWriteItem[];
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
  /** Decrements each line's stock, on the condition that enough is left of the item the customer saw. */
  readonly reservation: { readonly TransactItems: TransactWriteItem[] };
  /**
   * Gives each line's stock back, to the same creation of the item only: the
   * compensation of the reservation, line by line. A line whose item was
   * deleted (or deleted and created again) since is recorded on the order as
   * not returned.
   */
  readonly release: LineRelease[];
  /**
   * Each line's reservation condition on its own (a ConditionCheck, no
   * write): run when the reservation failed, the lines whose check fails are
   * the order's short items, stored on it as data.
   */
  readonly stockChecks: LineCheck[];
}

/** A transaction writes at most 100 items; one line per distinct item. */
export const MAX_ORDER_ITEMS = 100;

/** Lines of the same item become one (a transaction may touch an item once), in first-seen order. */
export function mergeLines<T extends OrderLine>(lines: readonly T[]): T[] {
  const merged = new Map<string, T>();
  for (const line of lines) {
    const seen = merged.get(line.itemId);
    merged.set(line.itemId, seen ? { ...seen, quantity: seen.quantity + line.quantity } : line);
  }
  return [...merged.values()];
}

/** Never an incarnation: the condition of a line whose item did not exist when the order was placed. */
const NO_ITEM = '-';

/**
 * Sets on every stock write beside the stock itself, as every write of an
 * item does: the version, `updatedAt`, and no copy marker left behind (a
 * record whose marker equals its `updatedAt` is a move's copy, which the
 * publisher tells nobody of).
 */
const STOCK_WRITE_EXPRESSION = (sign: '-' | '+') =>
  `SET stock = stock ${sign} :quantity, #version = #version + :one, #updatedAt = :updatedAt REMOVE #copy`;

/**
 * `at` stamps the reservation's `updatedAt`: the workflow starts at once and
 * reserves first. The release's stamp is the time the workflow gives it back
 * (the state machine replaces `:updatedAt`); until then it holds `at` too.
 */
export function orderWorkflowInput(
  tableName: string,
  order: { tenantId: string; orderId: string; lines: readonly ReservedLine[]; paymentToken: string; at: string },
): OrderWorkflowInput {
  const lines = mergeLines(order.lines);
  if (lines.length === 0 || lines.length > MAX_ORDER_ITEMS) throw new RangeError(`an order has 1 to ${MAX_ORDER_ITEMS} distinct items`);
  const keyOf = (line: ReservedLine) => {
    const { pk, sk } = itemKey(order.tenantId, line.itemId);
    return { pk: { S: pk }, sk: { S: sk } };
  };
  const fromOf = (line: ReservedLine): [string, string] =>
    line.from && 'incarnation' in line.from
      ? ['incarnation', line.from.incarnation]
      : line.from
        ? ['createdAt', line.from.createdAt]
        : ['incarnation', NO_ITEM];
  const enoughStock = (line: ReservedLine): TransactWriteItem => {
    const [name, value] = fromOf(line);
    return {
      ConditionCheck: {
        TableName: tableName,
        Key: keyOf(line),
        ConditionExpression: `#from = :from AND stock >= :quantity`,
        ExpressionAttributeNames: { '#from': name },
        ExpressionAttributeValues: { ':quantity': { N: String(line.quantity) }, ':from': { S: value } },
      },
    };
  };
  const stockUpdate = (line: ReservedLine, sign: '-' | '+', stockCondition: string): TransactWriteItem => {
    const [name, value] = fromOf(line);
    return {
      Update: {
        TableName: tableName,
        Key: keyOf(line),
        // Stock is part of the item: its version moves, so If-Match writers see the change.
        UpdateExpression: STOCK_WRITE_EXPRESSION(sign),
        // A tombstone has neither incarnation nor createdAt: a deleted item fails this too.
        ConditionExpression: `#from = :from${stockCondition}`,
        ExpressionAttributeNames: { '#version': 'version', '#from': name, ...RECORD_WRITE_NAMES },
        ExpressionAttributeValues: {
          ':quantity': { N: String(line.quantity) },
          ':one': { N: '1' },
          ':from': { S: value },
          ':updatedAt': { S: order.at },
        },
      },
    };
  };
  return {
    tenantId: order.tenantId,
    orderId: order.orderId,
    payment: { token: order.paymentToken },
    reservation: { TransactItems: lines.map((line) => stockUpdate(line, '-', ' AND stock >= :quantity')) },
    release: lines.map((line) => ({ itemId: line.itemId, TransactItems: [stockUpdate(line, '+', '')] })),
    stockChecks: lines.map((line) => ({ itemId: line.itemId, TransactItems: [enoughStock(line)] })),
  };
}
