import { randomUUID } from 'node:crypto';
import { marshall } from '@aws-sdk/util-dynamodb';
import { TokenVerifier } from '@item-master/shared';
import type { APIGatewayRequestAuthorizerEvent, DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { authorizeConnect } from '../../functions/live-authorizer/authorizer.ts';
import { ConnectionStore } from '../../functions/live-socket/connection-store.ts';
import { itemTopic, MAX_CONNECTION_SECONDS, TENANT_INDEX, tenantTopic } from '../../layers/shared/src/contracts/connections.ts';
import { handleFrame, MAX_FRAME_BYTES } from '../../functions/live-socket/socket.ts';
import { MAX_MESSAGE_BYTES, messageOf, oldestChangeAgeMs } from '../../functions/publisher/changes.ts';
import { BatchSubscriptions, fanOut, GoneError, type Poster } from '../../functions/publisher/fanout.ts';
import { createCellTable } from '../support/tables.ts';
import { scopeOf, TEST_POOL_ID, TEST_RESOURCE_SERVER, testIssuer, type TestIssuer } from '../support/tokens.ts';

let table: Awaited<ReturnType<typeof createCellTable>>;
let store: ConnectionStore;

beforeAll(async () => {
  table = await createCellTable(inject('dynamoEndpoint'), 'connections', TENANT_INDEX);
  store = new ConnectionStore(table.doc, table.tableName);
});
afterAll(async () => {
  await table?.drop();
});

const frame = (body: unknown) => (typeof body === 'string' ? body : JSON.stringify(body));

describe('connections and subscriptions', () => {
  it('opens a connection for two hours and subscribes it to its tenant or to items', async () => {
    const before = Math.floor(Date.now() / 1000);
    const opened = await store.open('c-1', 'acme');
    const after = Math.floor(Date.now() / 1000);
    // Two hours from the open, bounded on both sides: no clock margin, and a longer TTL fails too.
    expect(MAX_CONNECTION_SECONDS).toBe(2 * 60 * 60);
    expect(opened.expiresAt).toBeGreaterThanOrEqual(before + MAX_CONNECTION_SECONDS);
    expect(opened.expiresAt).toBeLessThanOrEqual(after + MAX_CONNECTION_SECONDS);
    expect(await handleFrame(store, 'c-1', 'acme', frame({ action: 'subscribe', tenantId: 'acme', itemIds: ['a', 'b'] }))).toEqual({
      type: 'subscribed',
      tenantId: 'acme',
      itemIds: ['a', 'b'],
    });
    expect(await handleFrame(store, 'c-1', 'acme', frame({ action: 'subscribe', tenantId: 'acme' }))).toMatchObject({ itemIds: 'all' });
    expect((await store.topics('c-1')).sort()).toEqual([itemTopic('acme', 'a'), itemTopic('acme', 'b'), tenantTopic('acme')].sort());
    expect(await store.subscribers('acme', [itemTopic('acme', 'a'), tenantTopic('acme')])).toEqual(['c-1']);

    await handleFrame(store, 'c-1', 'acme', frame({ action: 'unsubscribe', tenantId: 'acme', itemIds: ['a'] }));
    expect(await store.subscribers('acme', [itemTopic('acme', 'a')])).toEqual([]);
    await store.close('c-1');
    expect(await store.get('c-1')).toBeUndefined();
    expect(await store.subscribers('acme', [tenantTopic('acme'), itemTopic('acme', 'b')])).toEqual([]);
  });

  it('refuses another tenant, a closed connection and more than 100 items', async () => {
    await store.open('c-2', 'acme');
    expect(await handleFrame(store, 'c-2', 'acme', frame({ action: 'subscribe', tenantId: 'globex' }))).toMatchObject({
      type: 'error',
      code: 'forbidden',
    });
    expect(await store.subscribers('globex', [tenantTopic('globex')])).toEqual([]);
    expect(await handleFrame(store, 'gone', 'acme', frame({ action: 'subscribe', tenantId: 'acme' }))).toMatchObject({ code: 'gone' });
    const hundred = Array.from({ length: 100 }, (_, i) => `i-${i}`);
    expect(await handleFrame(store, 'c-2', 'acme', frame({ action: 'subscribe', tenantId: 'acme', itemIds: hundred }))).toMatchObject({
      type: 'subscribed',
    });
    expect(await handleFrame(store, 'c-2', 'acme', frame({ action: 'subscribe', tenantId: 'acme', itemIds: ['one-more'] }))).toMatchObject({
      code: 'too_many_subscriptions',
    });
    expect(await store.topics('c-2')).toHaveLength(100);
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
    await store.open('c-3', 'acme');
    expect(await handleFrame(store, 'c-3', 'acme', frame(body))).toMatchObject({ type: 'error', code });
    expect(await handleFrame(store, 'c-3', 'acme', frame({ action: 'subscribe', tenantId: 'acme' }))).toMatchObject({ type: 'subscribed' });
  });
});

describe('the $connect authorizer', () => {
  let issuer: TestIssuer;
  let verifier: TokenVerifier;
  beforeAll(async () => {
    issuer = await testIssuer();
    verifier = new TokenVerifier({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: issuer.url });
  });
  afterAll(() => issuer?.close());
  const event = (query: Record<string, string>) =>
    ({
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:us-east-1:1:api/prod/$connect',
      queryStringParameters: query,
    }) as unknown as APIGatewayRequestAuthorizerEvent;

  it("allows a valid token and binds the connection to the token's tenant", async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme', scopes: ['items.read'] });
    const result = await authorizeConnect(verifier, event({ token: access_token }));
    expect(result.policyDocument.Statement).toEqual([
      expect.objectContaining({ Effect: 'Allow', Resource: 'arn:aws:execute-api:us-east-1:1:api/prod/$connect' }),
    ]);
    expect(result.context).toMatchObject({ tenantId: 'acme' });
  });

  it('refuses no token, a forged one and one without items.read', async () => {
    await expect(authorizeConnect(verifier, event({}))).rejects.toThrow('Unauthorized');
    const forged = await issuer.forge({ clientId: 'c1', scope: scopeOf('items.read'), claims: { tenant_id: 'acme' }, expiresInSeconds: 600 });
    await expect(authorizeConnect(verifier, event({ token: forged }))).rejects.toThrow('Unauthorized');
    const writer = (await issuer.issue({ tenantId: 'acme', scopes: ['orders.write'] })).access_token;
    await expect(authorizeConnect(verifier, event({ token: writer }))).rejects.toThrow('Unauthorized');
  });
});

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

describe('fan-out', () => {
  it('reaches 1,000 subscribers of a tenant with one update', async () => {
    const tenant = `fan-${randomUUID().slice(0, 8)}`;
    const ids = Array.from({ length: 1000 }, (_, i) => `fan-${i}`);
    for (const id of ids) await store.subscribe(await store.open(id, tenant), [tenantTopic(tenant)]);
    const received = new Map<string, string>();
    const poster: Poster = { post: async (id, data) => void received.set(id, data) };
    const result = await fanOut(
      store,
      poster,
      { type: 'item.updated', tenantId: tenant },
      { tenantId: tenant, topics: [tenantTopic(tenant), itemTopic(tenant, 'w')] },
    );
    expect(result).toEqual({ sent: 1000, gone: 0, failed: 0 });
    expect([...received.keys()].sort()).toEqual([...ids].sort());
    expect(new Set(received.values())).toEqual(new Set([JSON.stringify({ type: 'item.updated', tenantId: tenant })]));
  }, 60_000);

  it('removes gone connections, and one failing connection stops none of the others', async () => {
    const tenant = `mixed-${randomUUID().slice(0, 8)}`;
    for (const id of ['ok-1', 'gone-1', 'broken-1', 'ok-2'])
      await store.subscribe(await store.open(`${tenant}-${id}`, tenant), [tenantTopic(tenant)]);
    const delivered: string[] = [];
    const failures: string[] = [];
    const poster: Poster = {
      post: async (id) => {
        if (id.endsWith('gone-1')) throw new GoneError(id);
        if (id.endsWith('broken-1')) throw new Error('socket reset');
        delivered.push(id);
      },
    };
    const result = await fanOut(store, poster, { type: 'x' }, { tenantId: tenant, topics: [tenantTopic(tenant)] }, (id) => failures.push(id));
    expect(result).toEqual({ sent: 2, gone: 1, failed: 1 });
    expect(delivered.sort()).toEqual([`${tenant}-ok-1`, `${tenant}-ok-2`]);
    expect(failures).toEqual([`${tenant}-broken-1`]);
    expect(await store.get(`${tenant}-gone-1`)).toBeUndefined();
    expect((await store.subscribers(tenant, [tenantTopic(tenant)])).sort()).toEqual([`${tenant}-broken-1`, `${tenant}-ok-1`, `${tenant}-ok-2`]);
  });
});

describe('one batch of changes', () => {
  it("reads each tenant's subscriptions once, posts to the subscribers of each record, and closes a gone connection once", async () => {
    const tenant = `batch-${randomUUID().slice(0, 8)}`;
    const other = `other-${randomUUID().slice(0, 8)}`;
    for (const id of ['a', 'b', 'gone']) await store.subscribe(await store.open(`${tenant}-${id}`, tenant), [tenantTopic(tenant)]);
    await store.subscribe(await store.open(`${tenant}-item`, tenant), [itemTopic(tenant, 'w1')]);
    await store.subscribe(await store.open(`${other}-item`, other), [itemTopic(other, 'w1')]);
    const reads: string[] = [];
    const closes: string[] = [];
    const counted = {
      subscriptions: (tenantId: string) => {
        reads.push(tenantId);
        return store.subscriptions(tenantId);
      },
      close: (connectionId: string) => {
        closes.push(connectionId);
        return store.close(connectionId);
      },
    };
    const batch = new BatchSubscriptions(counted);
    const posts: string[] = [];
    const poster: Poster = {
      post: async (id) => {
        if (id.endsWith('-gone')) throw new GoneError(id);
        posts.push(id);
      },
    };
    const change = (tenantId: string, item: string) => ({ tenantId, topics: [tenantTopic(tenantId), itemTopic(tenantId, item)] });
    const results = [];
    for (const audience of [change(tenant, 'w1'), change(tenant, 'w2'), change(other, 'w1'), change(tenant, 'w1')]) {
      results.push(await fanOut(batch, poster, { type: 'item.updated' }, audience));
    }

    expect(reads.sort()).toEqual([other, tenant].sort());
    expect(results).toEqual([
      { sent: 3, gone: 1, failed: 0 },
      { sent: 2, gone: 0, failed: 0 },
      { sent: 1, gone: 0, failed: 0 },
      { sent: 3, gone: 0, failed: 0 },
    ]);
    expect(posts.filter((id) => id === `${tenant}-item`)).toHaveLength(2);
    expect(posts.filter((id) => id === `${other}-item`)).toHaveLength(1);
    expect(closes).toEqual([`${tenant}-gone`]);
    expect(await store.get(`${tenant}-gone`)).toBeUndefined();
  });

  it("reads a tenant's subscriptions again after a failed read", async () => {
    let calls = 0;
    const batch = new BatchSubscriptions({
      subscriptions: async () => {
        calls += 1;
        if (calls === 1) throw new Error('throttled');
        return [{ topic: 'TENANT#t', connectionId: 'c-1' }];
      },
      close: async () => undefined,
    });
    await expect(batch.subscribers('t', ['TENANT#t'])).rejects.toThrow('throttled');
    expect(await batch.subscribers('t', ['TENANT#t'])).toEqual(['c-1']);
    expect(await batch.subscribers('t', ['TENANT#t#ITEM#x'])).toEqual([]);
    expect(calls).toBe(2);
  });
});
