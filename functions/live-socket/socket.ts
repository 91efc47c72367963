import { ID_PATTERN, ID_RULE } from '@item-master/shared';
import * as z from 'zod';
import { itemTopic, MAX_ITEMS_PER_CONNECTION, tenantTopic } from '@item-master/shared';
import type { ConnectionStore } from './connection-store.ts';

/** Largest frame a client may send: a subscribe of 100 long item ids fits well within it. */
export const MAX_FRAME_BYTES = 32 * 1024;

const id = z.string().regex(ID_PATTERN, ID_RULE);
const frameSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('subscribe'), tenantId: id, itemIds: z.array(id).min(1).max(100).optional() }).strict(),
  z.object({ action: z.literal('unsubscribe'), tenantId: id, itemIds: z.array(id).min(1).max(100).optional() }).strict(),
]);

/** What the socket answers a client's frame with (sent back on the same connection). */
export type Reply =
  | { type: 'subscribed' | 'unsubscribed'; tenantId: string; itemIds: string[] | 'all' }
  | { type: 'error'; code: string; message: string; details?: unknown };

const error = (code: string, message: string, details?: unknown): Reply => ({
  type: 'error',
  code,
  message,
  ...(details !== undefined && { details }),
});

/**
 * One client frame (any route: `subscribe`, `unsubscribe` or `$default`),
 * from a connection whose token named `tenantId`. Every problem is an error
 * reply, never a thrown error: the connection stays usable.
 */
export async function handleFrame(store: ConnectionStore, connectionId: string, tenantId: string, body: string | null | undefined): Promise<Reply> {
  const text = body ?? '';
  if (Buffer.byteLength(text, 'utf8') > MAX_FRAME_BYTES) return error('frame_too_large', `frames are at most ${MAX_FRAME_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return error('invalid_json', 'the frame is not valid JSON');
  }
  const action = (json as { action?: unknown } | null)?.action;
  if (action !== 'subscribe' && action !== 'unsubscribe') {
    return error('unknown_action', 'the action must be "subscribe" or "unsubscribe"');
  }
  const parsed = frameSchema.safeParse(json);
  if (!parsed.success) {
    return error(
      'validation_failed',
      'the frame is not valid',
      parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  }
  const frame = parsed.data;
  if (frame.tenantId !== tenantId) return error('forbidden', 'a connection may subscribe to its own tenant only');
  const topics = frame.itemIds ? frame.itemIds.map((itemId) => itemTopic(tenantId, itemId)) : [tenantTopic(tenantId)];
  const itemIds = frame.itemIds ?? 'all';
  if (frame.action === 'unsubscribe') {
    await store.unsubscribe(connectionId, topics);
    return { type: 'unsubscribed', tenantId, itemIds };
  }
  const { connection, topics: current } = await store.state(connectionId);
  if (!connection) return error('gone', 'the connection is closed; connect again');
  const items = new Set([...current, ...topics].filter((topic) => topic !== tenantTopic(tenantId)));
  if (items.size > MAX_ITEMS_PER_CONNECTION) {
    return error('too_many_subscriptions', `a connection follows at most ${MAX_ITEMS_PER_CONNECTION} items (or its whole tenant)`);
  }
  await store.subscribe(connection, topics);
  return { type: 'subscribed', tenantId, itemIds };
}
