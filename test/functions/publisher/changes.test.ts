import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { itemTopic, tenantTopic } from '../../../layers/shared/src/contracts/connections.ts';
import { MAX_MESSAGE_BYTES, messageOf, oldestChangeAgeMs } from '../../../functions/publisher/changes.ts';

describe('what the publisher makes of table changes', () => {
  const record = (eventName: 'INSERT' | 'MODIFY' | 'REMOVE', next?: object, previous?: object): DynamoDBRecord => ({
    eventName,
    dynamodb: {
      ...(next && { NewImage: marshall(next) as never }),
      ...(previous && { OldImage: marshall(previous) as never }),
    },
  });
  const item = { pk: 'TENANT#acme', sk: 'ITEM#w', entity: 'item', tenantId: 'acme', itemId: 'w', title: 'W', stock: 3, version: 2 };

  it("measures how late a batch is by its oldest change's creation time, in whole seconds", () => {
    const at = (seconds?: number): DynamoDBRecord => ({
      eventName: 'MODIFY',
      dynamodb: seconds === undefined ? {} : { ApproximateCreationDateTime: seconds },
    });
    expect(oldestChangeAgeMs([at(1_000), at(990), at(1_005)], 1_010_500)).toBe(20_500);
    expect(oldestChangeAgeMs([at(), at(1_000)], 1_000_250)).toBe(250);
    // A clock behind the stream's is no negative lag.
    expect(oldestChangeAgeMs([at(1_000)], 999_000)).toBe(0);
    expect(oldestChangeAgeMs([at()], 1)).toBeUndefined();
    expect(oldestChangeAgeMs([], 1)).toBeUndefined();
  });

  it('turns item writes into item.updated, for the tenant and the item', () => {
    expect(messageOf(record('MODIFY', item, { ...item, version: 1 }))).toEqual({
      message: {
        type: 'item.updated',
        tenantId: 'acme',
        itemId: 'w',
        version: 2,
        item: { tenantId: 'acme', itemId: 'w', title: 'W', stock: 3, version: 2 },
      },
      audience: { tenantId: 'acme', topics: [tenantTopic('acme'), itemTopic('acme', 'w')] },
    });
  });

  it('tells nobody of a move: neither its copies nor the removals of its source or aborted copies', () => {
    const copied = { ...item, updatedAt: 't1', copyOf: 't1' };
    expect(messageOf(record('INSERT', copied))).toBeUndefined();
    expect(messageOf(record('MODIFY', copied, item))).toBeUndefined();
    expect(messageOf(record('REMOVE', undefined, item))).toBeUndefined();
    // The next real write changes updatedAt: published, without the marker.
    const written = { ...copied, version: 3, updatedAt: 't2' };
    const { message } = messageOf(record('MODIFY', written, copied))!;
    expect(message).toMatchObject({ type: 'item.updated', version: 3 });
    expect(JSON.stringify(message)).not.toContain('copyOf');
    const order = {
      pk: 'TENANT#acme',
      sk: 'ORDER#o',
      entity: 'order',
      tenantId: 'acme',
      orderId: 'o',
      status: 'CONFIRMED',
      updatedAt: 't0',
      copyOf: 't0',
    };
    expect(messageOf(record('INSERT', order))).toBeUndefined();
  });

  it("publishes a tombstone as the delete, at its own version, and never the store's incarnation", () => {
    const stored = { ...item, incarnation: 'c0ffee' };
    const tombstone = { pk: item.pk, sk: item.sk, entity: 'item', tenantId: 'acme', itemId: 'w', version: 3, deletedAt: '2026-01-01T00:00:00.000Z' };
    expect(messageOf(record('MODIFY', tombstone, stored))?.message).toEqual({ type: 'item.deleted', tenantId: 'acme', itemId: 'w', version: 3 });
    const recreated = { ...stored, incarnation: 'beef', version: 4 };
    expect(messageOf(record('MODIFY', recreated, tombstone))?.message).toMatchObject({ type: 'item.updated', version: 4, item: { version: 4 } });
    expect(JSON.stringify(messageOf(record('MODIFY', recreated, tombstone)))).not.toContain('incarnation');
  });

  it('keeps every message under 32 KB: a large item is announced by version', () => {
    const large = { ...item, description: 'x'.repeat(40_000) };
    const { message } = messageOf(record('MODIFY', large))!;
    expect(message).toEqual({ type: 'item.updated', tenantId: 'acme', itemId: 'w', version: 2, truncated: true });
    expect(Buffer.byteLength(JSON.stringify(message))).toBeLessThan(MAX_MESSAGE_BYTES);
  });

  it('turns order status changes into order.updated for the tenant, and ignores the rest', () => {
    const order = { pk: 'TENANT#acme', sk: 'ORDER#o', entity: 'order', tenantId: 'acme', orderId: 'o', status: 'PENDING', updatedAt: 't0' };
    expect(messageOf(record('INSERT', order))).toEqual({
      message: { type: 'order.updated', tenantId: 'acme', orderId: 'o', status: 'PENDING', updatedAt: 't0' },
      audience: { tenantId: 'acme', topics: [tenantTopic('acme')] },
    });
    const failed = { ...order, status: 'FAILED', failureReason: 'out_of_stock', failureCause: 'internal', updatedAt: 't1' };
    expect(messageOf(record('MODIFY', failed, order))?.message).toEqual({
      type: 'order.updated',
      tenantId: 'acme',
      orderId: 'o',
      status: 'FAILED',
      failureReason: 'out_of_stock',
      updatedAt: 't1',
    });
    expect(messageOf(record('MODIFY', { ...order, updatedAt: 't2' }, order))).toBeUndefined();
    expect(messageOf(record('REMOVE', undefined, order))).toBeUndefined();
    expect(messageOf(record('INSERT', { pk: 'x', sk: 'y', entity: 'other', tenantId: 'acme' }))).toBeUndefined();
  });
});
