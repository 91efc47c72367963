import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SFNClient } from '@aws-sdk/client-sfn';
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { FAILURE_REASONS, itemKey, orderKey } from '@item-master/shared';
import { ItemStore } from '../../../functions/cell-api/item-store.ts';
import {
  IdempotencyKeyReusedError,
  OrderStore,
  StepFunctionsStarter,
  WorkflowNotStartedError,
  orderIdFor,
  type ExecutionStarter,
} from '../../../functions/cell-api/order-store.ts';
import type { OrderWorkflowInput } from '../../../functions/cell-api/saga-input.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../../local/dynamodb-local.ts';
import { createCellTable } from '../../support/tables.ts';
import { recordCommands, type Answer } from '../../support/commands.ts';

// The order store on its own, under what the API's tests cannot make happen: a throttled batch read, a failed put of a repeat, failures as the saga stores them.
let table: Awaited<ReturnType<typeof createCellTable>>;
const tenant = 'tenant-orders';
const widget = { title: 'Widget', price: { amount: 100, currency: 'EUR' }, stock: 5 };
const order = (itemIds: string[]) => ({ lines: itemIds.map((itemId) => ({ itemId, quantity: 1 })), customerId: 'c-1', payment: { token: 'tok_ok' } });

class RecordingStarter implements ExecutionStarter {
  readonly started: OrderWorkflowInput[] = [];
  async start(_name: string, input: OrderWorkflowInput): Promise<void> {
    this.started.push(input);
  }
}

/** Records each command the table client sends; `answer` may answer in the table's place. */
const intercept = (answer?: Answer) => recordCommands(table.doc, answer);

const storedOrder = (orderId: string) => table.doc.send(new GetCommand({ TableName: table.tableName, Key: orderKey(tenant, orderId) }));

beforeAll(async () => {
  table = await createCellTable(inject('dynamoEndpoint'));
  const items = new ItemStore(table.doc, table.tableName);
  await items.put(tenant, 'current', widget);
  await items.put(tenant, 'deleted', widget);
  await items.delete(tenant, 'deleted');
  // Written before items had incarnations.
  await table.doc.send(
    new PutCommand({
      TableName: table.tableName,
      Item: { ...itemKey(tenant, 'legacy'), entity: 'item', ...widget, version: 1, createdAt: '2025-01-01T00:00:00.000Z' },
    }),
  );
});
afterAll(async () => {
  await table?.drop();
});

describe('placing an order', () => {
  it('reserves from the creation of each item it read: its incarnation, else its createdAt; a deleted or missing item from none', async () => {
    const workflow = new RecordingStarter();
    const watch = intercept();
    try {
      await new OrderStore(table.doc, table.tableName, workflow).place(tenant, 'k-from', order(['current', 'deleted', 'legacy', 'missing']));
    } finally {
      watch.stop();
    }
    const { Item: current } = await table.doc.send(new GetCommand({ TableName: table.tableName, Key: itemKey(tenant, 'current') }));
    const from = workflow.started[0]!.reservation.TransactItems.map(({ Update }) => [
      Update!.ExpressionAttributeNames!['#from'],
      Update!.ExpressionAttributeValues![':from']!.S,
    ]);
    expect(from).toEqual([
      ['incarnation', current!.incarnation],
      ['incarnation', '-'],
      ['createdAt', '2025-01-01T00:00:00.000Z'],
      ['incarnation', '-'],
    ]);
    const batch = watch.sent.find((command) => command.name === 'BatchGetItemCommand')!;
    expect((batch.input.RequestItems as Record<string, { ConsistentRead: boolean }>)[table.tableName]!.ConsistentRead).toBe(true);
  });

  it('reads again what a throttled batch read left over, and gives up after four rounds, recording nothing', async () => {
    let leftOver = 3;
    const unprocessed = (input: Record<string, unknown>) => ({ Responses: { [table.tableName]: [] }, UnprocessedKeys: input.RequestItems });
    const throttled = intercept(({ name, input }) => (name === 'BatchGetItemCommand' && leftOver-- > 0 ? unprocessed(input) : undefined));
    const workflow = new RecordingStarter();
    try {
      await new OrderStore(table.doc, table.tableName, workflow).place(tenant, 'k-rounds', order(['current']));
    } finally {
      throttled.stop();
    }
    expect(throttled.sent.filter((command) => command.name === 'BatchGetItemCommand')).toHaveLength(4);
    expect(workflow.started[0]!.reservation.TransactItems[0]!.Update!.ExpressionAttributeNames!['#from']).toBe('incarnation');

    const always = intercept(({ name, input }) => (name === 'BatchGetItemCommand' ? unprocessed(input) : undefined));
    try {
      await expect(new OrderStore(table.doc, table.tableName, workflow).place(tenant, 'k-give-up', order(['current', 'legacy']))).rejects.toThrow(
        'DynamoDB left 2 item reads unprocessed',
      );
    } finally {
      always.stop();
    }
    expect(always.sent.filter((command) => command.name === 'BatchGetItemCommand')).toHaveLength(4);
    expect((await storedOrder(orderIdFor(tenant, 'k-give-up'))).Item).toBeUndefined();
  });

  it('fails a repeat whose write fails for another reason than the order being there, and starts nothing', async () => {
    const workflow = new RecordingStarter();
    const orders = new OrderStore(table.doc, table.tableName, workflow);
    await orders.place(tenant, 'k-throttled', order(['current']));
    const throttle = new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} });
    const throttled = intercept(({ name }) => (name === 'PutItemCommand' ? throttle : undefined));
    try {
      await expect(orders.place(tenant, 'k-throttled', order(['current']))).rejects.toBe(throttle);
    } finally {
      throttled.stop();
    }
    expect(workflow.started).toHaveLength(1);
  });

  it('names its refusals', async () => {
    const orders = new OrderStore(table.doc, table.tableName, new RecordingStarter());
    await orders.place(tenant, 'k-reused', order(['current']));
    const reused = await orders.place(tenant, 'k-reused', order(['legacy'])).catch((error: unknown) => error);
    expect(reused).toBeInstanceOf(IdempotencyKeyReusedError);
    expect(reused).toMatchObject({ name: 'IdempotencyKeyReusedError', message: 'this Idempotency-Key was already used for a different request' });
    const down = new Error('Step Functions is down');
    const unstarted = await new OrderStore(table.doc, table.tableName, { start: () => Promise.reject(down) })
      .place(tenant, 'k-unstarted', order(['current']))
      .catch((error: unknown) => error);
    expect(unstarted).toBeInstanceOf(WorkflowNotStartedError);
    const orderId = orderIdFor(tenant, 'k-unstarted');
    expect(unstarted).toMatchObject({
      name: 'WorkflowNotStartedError',
      message: `order ${orderId} is recorded but its workflow could not be started`,
      cause: down,
    });
  });
});

describe('reading an order', () => {
  const record = (orderId: string, fields: Record<string, unknown>) =>
    table.doc.send(
      new PutCommand({
        TableName: table.tableName,
        Item: {
          ...orderKey(tenant, orderId),
          entity: 'order',
          tenantId: tenant,
          orderId,
          customerId: 'c-1',
          lines: [
            { itemId: 'a', quantity: 1, from: { incarnation: 'i-a' } },
            { itemId: 'b', quantity: 2 },
            { itemId: 'c', quantity: 3 },
          ],
          status: 'FAILED',
          requestHash: 'h',
          createdAt: '2026-01-01T00:00:00.000Z',
          updatedAt: '2026-01-01T00:00:00.000Z',
          ...fields,
        },
      }),
    );

  it('shows a failure as the saga recorded it: the short items only for out_of_stock, never the cause', async () => {
    const failureLines = [
      { itemId: 'a', short: true },
      { itemId: 'b', short: false },
      { itemId: 'c', short: true },
    ];
    await record('o-short', { failureReason: FAILURE_REASONS.outOfStock, failureLines, failureCause: 'ConditionalCheckFailed' });
    await record('o-declined', { failureReason: FAILURE_REASONS.paymentDeclined, failureLines, failureCause: 'card declined' });
    const orders = new OrderStore(table.doc, table.tableName, new RecordingStarter());
    expect(await orders.get(tenant, 'o-short')).toEqual({
      tenantId: tenant,
      orderId: 'o-short',
      customerId: 'c-1',
      lines: [
        { itemId: 'a', quantity: 1 },
        { itemId: 'b', quantity: 2 },
        { itemId: 'c', quantity: 3 },
      ],
      status: 'FAILED',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      failure: { reason: 'out_of_stock', items: ['a', 'c'] },
    });
    expect((await orders.get(tenant, 'o-declined')).failure).toEqual({ reason: 'payment_declined' });
  });

  it("names the lines whose stock could not be given back, in the order's own order", async () => {
    await record('o-unreturned', { failureReason: FAILURE_REASONS.paymentFailed, stockNotReturned: new Set(['c', 'a']) });
    const watch = intercept();
    try {
      const read = await new OrderStore(table.doc, table.tableName, new RecordingStarter()).get(tenant, 'o-unreturned');
      expect(read).toMatchObject({ stockNotReturned: ['a', 'c'], failure: { reason: 'payment_failed' } });
    } finally {
      watch.stop();
    }
    expect(watch.sent).toEqual([expect.objectContaining({ name: 'GetItemCommand', input: expect.objectContaining({ ConsistentRead: true }) })]);
  });
});

describe('StepFunctionsStarter', () => {
  /** An endpoint that answers StartExecution as Step Functions would, with the given error type, or success. */
  async function stepFunctions(errorType?: string) {
    const requests: Array<{ target: string; body: Record<string, unknown> }> = [];
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        requests.push({ target: String(request.headers['x-amz-target']), body: JSON.parse(body) as Record<string, unknown> });
        response.writeHead(errorType ? 400 : 200, { 'content-type': 'application/x-amz-json-1.0' });
        response.end(JSON.stringify(errorType ? { __type: errorType, message: 'refused' } : { executionArn: 'arn:x', startDate: 0 }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new SFNClient({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 1,
    });
    return {
      requests,
      starter: new StepFunctionsStarter(client, 'arn:aws:states:us-east-1:123456789012:stateMachine:orders'),
      close: async () => {
        client.destroy();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }
  const input = { tenantId: tenant, orderId: 'o-1' } as unknown as OrderWorkflowInput;

  it('starts an execution named by the order, with the input as JSON', async () => {
    const sfn = await stepFunctions();
    try {
      await sfn.starter.start('o-1', input);
      expect(sfn.requests).toEqual([
        {
          target: 'AWSStepFunctions.StartExecution',
          body: { stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:orders', name: 'o-1', input: JSON.stringify(input) },
        },
      ]);
    } finally {
      await sfn.close();
    }
  });

  it('takes an execution of that name that already exists as started, and fails on any other refusal', async () => {
    const exists = await stepFunctions('ExecutionAlreadyExists');
    const missing = await stepFunctions('StateMachineDoesNotExist');
    try {
      await expect(exists.starter.start('o-1', input)).resolves.toBeUndefined();
      await expect(missing.starter.start('o-1', input)).rejects.toMatchObject({ name: 'StateMachineDoesNotExist' });
    } finally {
      await exists.close();
      await missing.close();
    }
  });
});
