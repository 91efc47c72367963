import { createHash } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ExecutionAlreadyExists, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { BatchGetCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { COPY_MARKER, ENTITIES, FAILURE_REASONS, ITEM_SK_PREFIX, itemKey, orderKey, type LineCheckResult } from '@item-master/shared';
import { mergeLines, orderWorkflowInput, type ItemIncarnation, type OrderLine, type OrderWorkflowInput, type ReservedLine } from './saga-input.ts';
import type { Order, OrderInput, OrderStatus } from './schema.ts';
import { NotFoundError } from './versioned-store.ts';

/** Starts the cell's order workflow. Starting the same name with the same input twice starts it once. */
export interface ExecutionStarter {
  start(name: string, input: OrderWorkflowInput): Promise<void>;
}

/** The workflow on Step Functions: the execution name is the idempotency key. */
export class StepFunctionsStarter implements ExecutionStarter {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  async start(name: string, input: OrderWorkflowInput): Promise<void> {
    try {
      await this.sfn.send(new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name, input: JSON.stringify(input) }));
    } catch (error) {
      // Same name, already finished (a running one answers success): this order's execution exists.
      if (error instanceof ExecutionAlreadyExists) return;
      throw error;
    }
  }
}

/** The Idempotency-Key was used before for a different order. */
export class IdempotencyKeyReusedError extends Error {
  constructor(readonly orderId: string) {
    super('this Idempotency-Key was already used for a different request');
    this.name = 'IdempotencyKeyReusedError';
  }
}

/** The order is recorded but its workflow could not be started; repeating the request starts it. */
export class WorkflowNotStartedError extends Error {
  constructor(
    readonly orderId: string,
    options: { cause: unknown },
  ) {
    super(`order ${orderId} is recorded but its workflow could not be started`, options);
    this.name = 'WorkflowNotStartedError';
  }
}

export interface PlacedOrder {
  orderId: string;
  status: OrderStatus;
  /** False when the key was seen before: the answer is the earlier order's. */
  created: boolean;
}

interface StoredOrder extends Omit<Order, 'failure' | 'stockNotReturned'> {
  lines: ReservedLine[];
  requestHash: string;
  /** As the saga records a failure (FAILURE_ATTRIBUTES): the reason, and for out_of_stock the short items. */
  failureReason?: string;
  failureLines?: LineCheckResult[];
  /** DynamoDB's or the payment's message, for operators: never shown, never parsed. */
  failureCause?: string;
  /** Lines whose item was deleted or created again before their stock could be given back (a string set). */
  stockNotReturned?: Set<string>;
}

/** The item reads that UnprocessedKeys may leave over before placing gives up (DynamoDB throttled it). */
const MAX_READ_ROUNDS = 4;

const ENTITY = ENTITIES.order;

/**
 * Orders of one cell table. Placing one records it as PENDING and starts the
 * workflow that moves it on; the record is written once, conditionally, so
 * a repeated request finds the order its key made and starts nothing new.
 */
export class OrderStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly workflow: ExecutionStarter,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async place(tenantId: string, idempotencyKey: string, input: OrderInput): Promise<PlacedOrder> {
    const orderId = orderIdFor(tenantId, idempotencyKey);
    const requestHash = sha256(JSON.stringify(input));
    const at = this.now().toISOString();
    const lines = mergeLines(input.lines);
    const order: StoredOrder = {
      tenantId,
      orderId,
      customerId: input.customerId,
      lines: await this.incarnations(tenantId, lines),
      status: 'PENDING',
      requestHash,
      createdAt: at,
      updatedAt: at,
    };
    let status: OrderStatus = 'PENDING';
    let created = true;
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          // The payment token is never stored: the workflow gets it in its input only.
          Item: { ...orderKey(tenantId, orderId), entity: ENTITY, ...order },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const existing = await this.read(tenantId, orderId);
      if (!existing) throw error;
      if (existing.requestHash !== requestHash) throw new IdempotencyKeyReusedError(orderId);
      ({ status } = existing);
      // The workflow's input must be the first request's: the items as they were then.
      order.lines = existing.lines;
      created = false;
    }
    // Still PENDING on a repeat: the first request may have stopped before starting it.
    if (status === 'PENDING') {
      const workflowInput = orderWorkflowInput(this.tableName, { tenantId, orderId, lines: order.lines, paymentToken: input.payment.token, at });
      try {
        await this.workflow.start(orderId, workflowInput);
      } catch (cause) {
        throw new WorkflowNotStartedError(orderId, { cause });
      }
    }
    return { orderId, status, created };
  }

  async get(tenantId: string, orderId: string): Promise<Order> {
    const stored = await this.read(tenantId, orderId);
    if (!stored) throw new NotFoundError(ENTITY, orderId);
    const { requestHash: _hash, failureReason, failureLines, failureCause: _cause, stockNotReturned, lines: reserved, ...rest } = stored;
    const lines = reserved.map(({ itemId, quantity }) => ({ itemId, quantity }));
    const order: Order = {
      ...rest,
      lines,
      ...(stockNotReturned && { stockNotReturned: lines.map((l) => l.itemId).filter((id) => stockNotReturned.has(id)) }),
    };
    if (failureReason === undefined) return order;
    const items =
      failureReason === FAILURE_REASONS.outOfStock ? (failureLines ?? []).filter((line) => line.short).map((line) => line.itemId) : undefined;
    return { ...order, failure: { reason: failureReason, ...(items && { items }) } };
  }

  /** Which creation of each line's item the order is for (one consistent batch read). */
  private async incarnations(tenantId: string, lines: OrderLine[]): Promise<ReservedLine[]> {
    const found = new Map<string, ItemIncarnation>();
    let keys: Array<Record<string, unknown>> = lines.map((line) => itemKey(tenantId, line.itemId));
    for (let round = 0; keys.length > 0; round += 1) {
      if (round === MAX_READ_ROUNDS) throw new Error(`DynamoDB left ${keys.length} item reads unprocessed`);
      const output = await this.doc.send(
        new BatchGetCommand({
          RequestItems: {
            [this.tableName]: {
              Keys: keys,
              ConsistentRead: true,
              ProjectionExpression: 'sk, incarnation, createdAt',
            },
          },
        }),
      );
      for (const item of output.Responses?.[this.tableName] ?? []) {
        // A tombstone has neither attribute: a deleted item is found as missing.
        const itemId = String(item.sk).slice(ITEM_SK_PREFIX.length);
        if (typeof item.incarnation === 'string') found.set(itemId, { incarnation: item.incarnation });
        else if (typeof item.createdAt === 'string') found.set(itemId, { createdAt: item.createdAt });
      }
      keys = output.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
    }
    return lines.map((line) => {
      const from = found.get(line.itemId);
      return from ? { ...line, from } : line;
    });
  }

  private async read(tenantId: string, orderId: string): Promise<StoredOrder | undefined> {
    const { Item: stored } = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: orderKey(tenantId, orderId), ConsistentRead: true }),
    );
    if (!stored) return undefined;
    const { pk: _pk, sk: _sk, entity: _entity, [COPY_MARKER]: _copy, ...order } = stored;
    return order as StoredOrder;
  }
}

/**
 * The order id, and so the execution name, is a function of the tenant and
 * the client's key: a repeat can only land on the same order. 32 hex
 * characters fit both the id rule and the 80-character execution name.
 */
export function orderIdFor(tenantId: string, idempotencyKey: string): string {
  return sha256(`${tenantId}\n${idempotencyKey}`).slice(0, 32);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
