import { describe, expect, inject, it } from 'vitest';
import { itemTopic, MAX_CONNECTION_SECONDS, tenantTopic } from '../../../layers/shared/src/contracts/connections.ts';
import { handleFrame, MAX_FRAME_BYTES } from '../../../functions/live-socket/socket.ts';
import { connectionsTable } from '../../support/connections.ts';

const connections = connectionsTable(inject('dynamoEndpoint'));

const frame = (body: unknown) => (typeof body === 'string' ? body : JSON.stringify(body));

describe('connections and subscriptions', () => {
  it('opens a connection for two hours and subscribes it to its tenant or to items', async () => {
    const before = Math.floor(Date.now() / 1000);
    const opened = await connections.store.open('c-1', 'acme');
    const after = Math.floor(Date.now() / 1000);
    // Two hours from the open, bounded on both sides: no clock margin, and a longer TTL fails too.
    expect(MAX_CONNECTION_SECONDS).toBe(2 * 60 * 60);
    expect(opened.expiresAt).toBeGreaterThanOrEqual(before + MAX_CONNECTION_SECONDS);
    expect(opened.expiresAt).toBeLessThanOrEqual(after + MAX_CONNECTION_SECONDS);
    expect(await handleFrame(connections.store, 'c-1', 'acme', frame({ action: 'subscribe', tenantId: 'acme', itemIds: ['a', 'b'] }))).toEqual({
      type: 'subscribed',
      tenantId: 'acme',
      itemIds: ['a', 'b'],
    });
    expect(await handleFrame(connections.store, 'c-1', 'acme', frame({ action: 'subscribe', tenantId: 'acme' }))).toMatchObject({ itemIds: 'all' });
    expect((await connections.store.topics('c-1')).sort()).toEqual([itemTopic('acme', 'a'), itemTopic('acme', 'b'), tenantTopic('acme')].sort());
    expect(await connections.store.subscribers('acme', [itemTopic('acme', 'a'), tenantTopic('acme')])).toEqual(['c-1']);

    await handleFrame(connections.store, 'c-1', 'acme', frame({ action: 'unsubscribe', tenantId: 'acme', itemIds: ['a'] }));
    expect(await connections.store.subscribers('acme', [itemTopic('acme', 'a')])).toEqual([]);
    await connections.store.close('c-1');
    expect(await connections.store.get('c-1')).toBeUndefined();
    expect(await connections.store.subscribers('acme', [tenantTopic('acme'), itemTopic('acme', 'b')])).toEqual([]);
  });

  it('refuses another tenant, a closed connection and more than 100 items', async () => {
    await connections.store.open('c-2', 'acme');
    expect(await handleFrame(connections.store, 'c-2', 'acme', frame({ action: 'subscribe', tenantId: 'globex' }))).toMatchObject({
      type: 'error',
      code: 'forbidden',
    });
    expect(await connections.store.subscribers('globex', [tenantTopic('globex')])).toEqual([]);
    expect(await handleFrame(connections.store, 'gone', 'acme', frame({ action: 'subscribe', tenantId: 'acme' }))).toMatchObject({ code: 'gone' });
    const hundred = Array.from({ length: 100 }, (_, i) => `i-${i}`);
    expect(await handleFrame(connections.store, 'c-2', 'acme', frame({ action: 'subscribe', tenantId: 'acme', itemIds: hundred }))).toMatchObject({
      type: 'subscribed',
    });
    expect(
      await handleFrame(connections.store, 'c-2', 'acme', frame({ action: 'subscribe', tenantId: 'acme', itemIds: ['one-more'] })),
    ).toMatchObject({
      code: 'too_many_subscriptions',
    });
    expect(await connections.store.topics('c-2')).toHaveLength(100);
  });

  it.each([
    ['bad JSON', '{"action": "subscribe",', 'invalid_json'],
    ['an unknown action', { action: 'shout', tenantId: 'acme' }, 'unknown_action'],
    ['no action', { tenantId: 'acme' }, 'unknown_action'],
    ['a JSON string', '"subscribe"', 'unknown_action'],
    ['a bad tenant id', { action: 'subscribe', tenantId: 'a/b' }, 'validation_failed'],
    ['101 item ids', { action: 'subscribe', tenantId: 'acme', itemIds: Array.from({ length: 101 }, (_, i) => `x${i}`) }, 'validation_failed'],
    ['no item ids', { action: 'subscribe', tenantId: 'acme', itemIds: [] }, 'validation_failed'],
    ['an unknown field', { action: 'subscribe', tenantId: 'acme', since: 3 }, 'validation_failed'],
    ['an oversized frame', 'x'.repeat(MAX_FRAME_BYTES + 1), 'frame_too_large'],
  ])('answers %s with an error frame, and the connection stays usable', async (_case, body, code) => {
    await connections.store.open('c-3', 'acme');
    expect(await handleFrame(connections.store, 'c-3', 'acme', frame(body))).toMatchObject({ type: 'error', code });
    expect(await handleFrame(connections.store, 'c-3', 'acme', frame({ action: 'subscribe', tenantId: 'acme' }))).toMatchObject({
      type: 'subscribed',
    });
  });
});
