import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { COPY_MARKER, ENTITIES, itemTopic, tenantTopic } from '@item-master/shared';
import type { Audience } from './fanout.ts';

/** API Gateway's limit on one WebSocket frame. */
export const MAX_MESSAGE_BYTES = 32 * 1024;

export type LiveMessage =
  | { type: 'item.updated'; tenantId: string; itemId: string; version: number; item?: Record<string, unknown>; truncated?: true }
  | { type: 'item.deleted'; tenantId: string; itemId: string; version: number }
  | { type: 'order.updated'; tenantId: string; orderId: string; status: string; failureReason?: string; updatedAt: string };

/** What a change of the cell table tells subscribers, and who it goes to; nothing for other records. */
export function messageOf(record: DynamoDBRecord): { message: LiveMessage; audience: Audience } | undefined {
  const image = (raw: unknown) => (raw ? unmarshall(raw as Record<string, AttributeValue>) : undefined);
  const next = image(record.dynamodb?.NewImage);
  const previous = image(record.dynamodb?.OldImage);
  // The API never removes a record (a delete leaves a tombstone): a removal is a move forgetting its source copy, or undoing its target copy.
  if (!next) return undefined;
  // A move's copy of a record, not a change of it (COPY_MARKER).
  if (next[COPY_MARKER] !== undefined && next[COPY_MARKER] === next.updatedAt) return undefined;
  const current = next;
  const tenantId = String(current.tenantId);
  if (current.entity === ENTITIES.item) {
    const itemId = String(current.itemId);
    const audience = { tenantId, topics: [tenantTopic(tenantId), itemTopic(tenantId, itemId)] };
    // A delete leaves a tombstone (deletedAt, the next version): a change like any other, published as the delete.
    if (next.deletedAt !== undefined) {
      return { message: { type: 'item.deleted', tenantId, itemId, version: Number(current.version) }, audience };
    }
    const { pk: _pk, sk: _sk, entity: _entity, incarnation: _incarnation, [COPY_MARKER]: _copy, ...item } = next;
    const full: LiveMessage = { type: 'item.updated', tenantId, itemId, version: Number(next.version), item };
    // An item may reach 256 KB: past the frame limit, subscribers get the version and read the item.
    const message: LiveMessage = fits(full) ? full : { type: 'item.updated', tenantId, itemId, version: Number(next.version), truncated: true };
    return { message, audience };
  }
  if (current.entity === ENTITIES.order) {
    // Only status changes: the saga writes nothing else an order's watcher needs.
    if (previous && previous.status === next.status) return undefined;
    const message: LiveMessage = {
      type: 'order.updated',
      tenantId,
      orderId: String(next.orderId),
      status: String(next.status),
      ...(typeof next.failureReason === 'string' && { failureReason: next.failureReason }),
      updatedAt: String(next.updatedAt),
    };
    return { message, audience: { tenantId, topics: [tenantTopic(tenantId)] } };
  }
  return undefined;
}

function fits(message: LiveMessage): boolean {
  return Buffer.byteLength(JSON.stringify(message), 'utf8') <= MAX_MESSAGE_BYTES;
}

/**
 * How long ago the oldest change of a batch was written, in ms: how late
 * this batch's live updates are (the stream's iterator age, seen from the
 * cell, under its `cellId`). Undefined for a batch without creation times.
 */
export function oldestChangeAgeMs(records: readonly DynamoDBRecord[], now = Date.now()): number | undefined {
  const times = records.flatMap((record) =>
    typeof record.dynamodb?.ApproximateCreationDateTime === 'number' ? [record.dynamodb.ApproximateCreationDateTime] : [],
  );
  // Stream records give the time in whole seconds since the epoch.
  return times.length === 0 ? undefined : Math.max(0, now - Math.min(...times) * 1000);
}
