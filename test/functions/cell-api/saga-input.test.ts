import { describe, expect, it } from 'vitest';
import { mergeLines, orderWorkflowInput } from '../../../functions/cell-api/saga-input.ts';
import { charge, PaymentDeclined, PaymentUnavailable, TRANSIENT_FAILURES } from '../../../functions/payment/provider.ts';
import { SAGA_INPUT } from '../../../layers/shared/src/contracts/order-saga.ts';

const request = (token: string, attempt = 0) => ({ tenantId: 'acme', orderId: 'o-1', token, attempt });

describe('the simulated payment provider', () => {
  it('approves tok_ok, declines tok_declined and unknown tokens', async () => {
    expect(await charge(request('tok_ok'))).toEqual({ paymentId: 'pay_o-1', status: 'approved' });
    await expect(charge(request('tok_declined'))).rejects.toBeInstanceOf(PaymentDeclined);
    await expect(charge(request('tok_whatever'))).rejects.toMatchObject({ name: 'PaymentDeclined' });
  });

  it('fails tok_flaky transiently on the first two attempts, then approves', async () => {
    for (let attempt = 0; attempt < TRANSIENT_FAILURES; attempt += 1) {
      await expect(charge(request('tok_flaky', attempt))).rejects.toBeInstanceOf(PaymentUnavailable);
    }
    expect((await charge(request('tok_flaky', TRANSIENT_FAILURES))).status).toBe('approved');
  });

  it('answers tok_slow only after the given delay', async () => {
    const started = Date.now();
    await charge(request('tok_slow'), { slowMs: 50 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });
});

const AT = '2026-12-07T10:00:00.000Z';

describe('orderWorkflowInput', () => {
  const lines = [
    { itemId: 'a', quantity: 2 },
    { itemId: 'b', quantity: 1 },
    { itemId: 'a', quantity: 3 },
  ];

  it('merges lines of one item, in first-seen order', () => {
    expect(mergeLines(lines)).toEqual([
      { itemId: 'a', quantity: 5 },
      { itemId: 'b', quantity: 1 },
    ]);
  });

  it('reserves each item once, from the creation of it the order saw, if its stock suffices, and releases the same quantities to it', () => {
    const seen = [
      { itemId: 'a', quantity: 2, from: { incarnation: 'inc-a' } },
      { itemId: 'b', quantity: 1, from: { createdAt: '2026-01-01T00:00:00.000Z' } },
      { itemId: 'a', quantity: 3, from: { incarnation: 'inc-a' } },
      { itemId: 'c', quantity: 1 },
    ];
    const input = orderWorkflowInput('cell-table', { tenantId: 'acme', orderId: 'o-1', lines: seen, paymentToken: 'tok_ok', at: AT });
    expect(input.payment).toEqual({ token: 'tok_ok' });
    expect(input.reservation.TransactItems.map((item) => item.Update)).toEqual([
      expect.objectContaining({
        TableName: 'cell-table',
        Key: { pk: { S: 'TENANT#acme' }, sk: { S: 'ITEM#a' } },
        UpdateExpression: 'SET stock = stock - :quantity, #version = #version + :one, #updatedAt = :updatedAt REMOVE #copy',
        ConditionExpression: '#from = :from AND stock >= :quantity',
        ExpressionAttributeNames: { '#version': 'version', '#from': 'incarnation', '#updatedAt': 'updatedAt', '#copy': 'copyOf' },
        ExpressionAttributeValues: { ':quantity': { N: '5' }, ':one': { N: '1' }, ':from': { S: 'inc-a' }, ':updatedAt': { S: AT } },
      }),
      // An item from before incarnations: its creation time tells its creation.
      expect.objectContaining({
        Key: { pk: { S: 'TENANT#acme' }, sk: { S: 'ITEM#b' } },
        ExpressionAttributeNames: expect.objectContaining({ '#version': 'version', '#from': 'createdAt' }),
        ExpressionAttributeValues: expect.objectContaining({ ':from': { S: '2026-01-01T00:00:00.000Z' } }),
      }),
      // Missing when the order was placed: a condition no item meets.
      expect.objectContaining({ ExpressionAttributeValues: expect.objectContaining({ ':from': { S: '-' } }) }),
    ]);
    expect(input.release.map((line) => line.itemId)).toEqual(['a', 'b', 'c']);
    expect(input.release.map((line) => line.TransactItems.map((item) => item.Update))).toEqual([
      [
        expect.objectContaining({
          UpdateExpression: 'SET stock = stock + :quantity, #version = #version + :one, #updatedAt = :updatedAt REMOVE #copy',
          ConditionExpression: '#from = :from',
        }),
      ],
      [
        expect.objectContaining({
          ConditionExpression: '#from = :from',
          ExpressionAttributeNames: expect.objectContaining({ '#from': 'createdAt' }),
        }),
      ],
      [expect.objectContaining({ ExpressionAttributeValues: expect.objectContaining({ ':quantity': { N: '1' } }) })],
    ]);
  });

  it('builds every part of the input where the saga contract says the state machine reads it', () => {
    const input = orderWorkflowInput('cell-table', { tenantId: 'acme', orderId: 'o-1', lines, paymentToken: 'tok_ok', at: AT });
    for (const [name, jsonPath] of Object.entries(SAGA_INPUT)) {
      const value = jsonPath
        .slice(2)
        .split('.')
        .reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], input);
      expect([name, value]).toEqual([name, expect.anything()]);
    }
  });

  it('refuses no lines and more distinct items than one transaction holds', () => {
    const order = { tenantId: 'acme', orderId: 'o-1', paymentToken: 'tok_ok', at: AT };
    expect(() => orderWorkflowInput('t', { ...order, lines: [] })).toThrow(RangeError);
    const many = Array.from({ length: 101 }, (_, n) => ({ itemId: `i-${n}`, quantity: 1 }));
    expect(() => orderWorkflowInput('t', { ...order, lines: many })).toThrow(/1 to 100 distinct items/);
  });
});
