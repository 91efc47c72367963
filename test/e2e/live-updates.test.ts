import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb-local.ts';
import { startLocalRuntime, type LocalRuntime } from '../../local/runtime.ts';
import { eventually } from '../support/eventually.ts';
import { connectLocal } from '../../control-plane/connect.ts';
import { FINISHED } from '../../control-plane/move-record.ts';
import { MoveEngine } from '../../control-plane/move-engine.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from '../support/processes.ts';
import { testContext } from '../support/synth.ts';

/**
 * Live updates as `npm start` serves them, with a real WebSocket client:
 * local WebSocket API → authorizer and socket bundles → connections table;
 * HTTP change → cell table stream → publisher bundle → management API →
 * the client.
 */
let runtime: LocalRuntime;
let outdir: string;
let doc: DynamoDBDocumentClient;
let connectionsTable: string;
const clients: LiveClient[] = [];

beforeAll(async () => {
  outdir = mkdtempSync(path.join(tmpdir(), 'item-master-live-'));
  runtime = await startLocalRuntime({
    port: 0,
    webSocketPort: 0,
    outdir,
    dynamoEndpoint: inject('dynamoEndpoint'),
    context: testContext({ appName: 'e2e-live', cells: ['cell-1', 'cell-2'] }),
    stateFile: path.join(outdir, 'local-runtime.json'),
    functionOutput: process.env.DEBUG_LIVE ? (line) => console.log(line) : () => undefined,
  });
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: runtime.dynamoEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
  connectionsTable = runtime.assembly.tables.find((t) => t.logicalId.startsWith('LiveConnections'))!.tableName;
});
afterAll(async () => {
  for (const client of clients) client.close();
  doc?.destroy();
  const pids = runtime?.pids() ?? [];
  await runtime?.stop();
  rmSync(outdir, { recursive: true, force: true });
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
});

type Frame = Record<string, any>;

/** A WebSocket client that keeps every frame it receives, to wait for the ones a test expects. */
class LiveClient {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  closed: Promise<number>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => socket.on('close', (code) => resolve(code)));
  }

  /** Connects, or rejects with the HTTP status the upgrade was refused with. */
  static connect(query: string): Promise<LiveClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${runtime.live!.url}${query}`);
      socket.once('open', () => {
        const client = new LiveClient(socket);
        clients.push(client);
        resolve(client);
      });
      socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`refused: ${res.statusCode}`), { status: res.statusCode })));
      socket.once('error', reject);
    });
  }

  static async forTenant(tenantId: string, scopes?: Array<'items.read' | 'items.write' | 'orders.write'>): Promise<LiveClient> {
    const { access_token } = await runtime.issuer!.issue({ tenantId, ...(scopes && { scopes }) });
    return LiveClient.connect(`?token=${access_token}`);
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame (after those already taken) that matches, within the time given. */
  async next(matches: (frame: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.frames.findIndex(matches);
      if (index >= 0) return this.frames.splice(index, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a frame and waits for its reply (the next `subscribed`, `unsubscribed` or `error`). */
  async ask(frame: unknown): Promise<Frame> {
    this.send(frame);
    return this.next((f) => ['subscribed', 'unsubscribed', 'error'].includes(f.type));
  }

  close(): void {
    this.socket.close();
  }
}

async function http(method: string, urlPath: string, tenantId: string, body?: unknown, headers: Record<string, string> = {}) {
  const { access_token } = await runtime.issuer!.issue({ tenantId });
  const response = await fetch(`${runtime.url}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json().catch(() => undefined)) as any };
}

const widget = { title: 'Widget', price: { amount: 1299, currency: 'EUR' }, stock: 10 };

/** The connection's records in the connections table. */
async function recordsOf(connectionId: string) {
  const { Items = [] } = await doc.send(
    new QueryCommand({
      TableName: connectionsTable,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `CONN#${connectionId}` },
    }),
  );
  return Items;
}

describe('live updates: connecting', () => {
  it('refuses a connection without a token, with a bad one, or with one lacking items.read', async () => {
    await expect(LiveClient.connect('')).rejects.toMatchObject({ status: 401 });
    await expect(LiveClient.connect('?token=not-a-jwt')).rejects.toMatchObject({ status: 401 });
    await expect(LiveClient.forTenant('acme', ['orders.write'])).rejects.toMatchObject({ status: 401 });
    expect(runtime.live!.connectionIds()).toEqual([]);
  });

  it('records an accepted connection under its token tenant, with the 2-hour expiry', async () => {
    const before = Math.floor(Date.now() / 1000);
    const open = new Set(runtime.live!.connectionIds());
    const client = await LiveClient.forTenant('conn-tenant');
    const [connectionId] = runtime.live!.connectionIds().filter((id) => !open.has(id));
    const reply = await client.ask({ action: 'subscribe', tenantId: 'conn-tenant' });
    expect(reply).toEqual({ type: 'subscribed', tenantId: 'conn-tenant', itemIds: 'all' });
    const records = await recordsOf(connectionId!);
    expect(records.find((r) => r.sk === 'CONNECTION')).toMatchObject({ tenantId: 'conn-tenant', expiresAt: expect.any(Number) });
    expect(records.find((r) => r.sk === 'CONNECTION')!.expiresAt).toBeGreaterThanOrEqual(before + 7_200);
    expect(records.find((r) => r.sk === 'TOPIC#TENANT#conn-tenant')).toMatchObject({ topic: 'TENANT#conn-tenant', connectionId });
    client.close();
  });
});

describe('live updates: item changes', () => {
  it('pushes item.updated and item.deleted to the tenant subscriber, and only its own item to an item subscriber', async () => {
    const tenant = 'live-items';
    const all = await LiveClient.forTenant(tenant);
    const one = await LiveClient.forTenant(tenant);
    expect(await all.ask({ action: 'subscribe', tenantId: tenant })).toMatchObject({ type: 'subscribed', itemIds: 'all' });
    expect(await one.ask({ action: 'subscribe', tenantId: tenant, itemIds: ['watched'] })).toMatchObject({
      type: 'subscribed',
      itemIds: ['watched'],
    });

    expect((await http('PUT', `/tenants/${tenant}/items/other`, tenant, widget)).status).toBe(201);
    expect((await http('PUT', `/tenants/${tenant}/items/watched`, tenant, widget)).status).toBe(201);
    const updated = await all.next((f) => f.type === 'item.updated' && f.itemId === 'watched', 2_000);
    expect(updated).toMatchObject({ tenantId: tenant, version: 1, item: { title: 'Widget', stock: 10, version: 1 } });
    await all.next((f) => f.type === 'item.updated' && f.itemId === 'other', 2_000);
    await one.next((f) => f.type === 'item.updated' && f.itemId === 'watched', 2_000);

    expect((await http('DELETE', `/tenants/${tenant}/items/watched`, tenant)).status).toBe(204);
    // The delete is a version of its own (its tombstone's).
    expect(await one.next((f) => f.type === 'item.deleted', 2_000)).toMatchObject({ itemId: 'watched', version: 2 });
    await all.next((f) => f.type === 'item.deleted' && f.itemId === 'watched', 2_000);
    expect(one.frames.filter((f) => f.itemId === 'other')).toEqual([]);
  });

  it("never sends one tenant's changes to another tenant's subscriber", async () => {
    const watcher = await LiveClient.forTenant('live-quiet');
    await watcher.ask({ action: 'subscribe', tenantId: 'live-quiet' });
    const busy = await LiveClient.forTenant('live-busy');
    await busy.ask({ action: 'subscribe', tenantId: 'live-busy' });
    await http('PUT', '/tenants/live-busy/items/x', 'live-busy', widget);
    await busy.next((f) => f.type === 'item.updated');
    expect(watcher.frames).toEqual([]);
  });
});

describe('live updates: orders', () => {
  it('pushes each status of an order through to CONFIRMED', async () => {
    const tenant = 'live-orders';
    await http('PUT', `/tenants/${tenant}/items/widget`, tenant, widget);
    const client = await LiveClient.forTenant(tenant);
    await client.ask({ action: 'subscribe', tenantId: tenant });
    const placed = await http(
      'POST',
      `/tenants/${tenant}/orders`,
      tenant,
      { lines: [{ itemId: 'widget', quantity: 2 }], customerId: 'c-1', payment: { token: 'tok_ok' } },
      { 'idempotency-key': 'live-order-1' },
    );
    expect(placed.status).toBe(202);
    const statuses: string[] = [];
    for (;;) {
      const frame = await client.next((f) => f.type === 'order.updated' && f.orderId === placed.json.orderId, 15_000);
      statuses.push(frame.status);
      if (frame.status === 'CONFIRMED' || frame.status === 'FAILED') break;
    }
    expect(statuses).toEqual(['PENDING', 'RESERVED', 'PAID', 'CONFIRMED']);
    // The reservation changed the item's stock: its subscribers hear of it too.
    await client.next((f) => f.type === 'item.updated' && f.itemId === 'widget' && f.item.stock === 8);
  });
});

describe('live updates: subscriptions', () => {
  it('refuses a subscription to another tenant and keeps the connection usable', async () => {
    const client = await LiveClient.forTenant('live-own');
    expect(await client.ask({ action: 'subscribe', tenantId: 'live-someone-else' })).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await client.ask({ action: 'subscribe', tenantId: 'live-own' })).toMatchObject({ type: 'subscribed' });
    await http('PUT', '/tenants/live-someone-else/items/x', 'live-someone-else', widget);
    await http('PUT', '/tenants/live-own/items/x', 'live-own', widget);
    await client.next((f) => f.type === 'item.updated' && f.tenantId === 'live-own');
    expect(client.frames.filter((f) => f.tenantId === 'live-someone-else')).toEqual([]);
  });

  it('answers bad input on every route with an error frame, and the connection stays usable', async () => {
    const client = await LiveClient.forTenant('live-bad');
    expect(await client.ask('{not json')).toMatchObject({ type: 'error', code: 'invalid_json' });
    expect(await client.ask({ action: 'dance' })).toMatchObject({ type: 'error', code: 'unknown_action' });
    expect(await client.ask({ nothing: true })).toMatchObject({ type: 'error', code: 'unknown_action' });
    expect(await client.ask({ action: 'subscribe', tenantId: 'live-bad', itemIds: [] })).toMatchObject({ type: 'error', code: 'validation_failed' });
    expect(await client.ask({ action: 'subscribe', tenantId: 'live-bad', extra: 1 })).toMatchObject({ type: 'error', code: 'validation_failed' });
    expect(await client.ask({ action: 'unsubscribe', tenantId: 'bad id!' })).toMatchObject({ type: 'error', code: 'validation_failed' });
    const many = Array.from({ length: 101 }, (_, n) => `item-${n}`);
    expect(await client.ask({ action: 'subscribe', tenantId: 'live-bad', itemIds: many })).toMatchObject({
      type: 'error',
      code: 'validation_failed',
    });
    const oversized = { action: 'subscribe', tenantId: 'live-bad', itemIds: ['x'], padding: 'p'.repeat(40_000) };
    expect(await client.ask(oversized)).toMatchObject({ type: 'error', code: 'frame_too_large' });
    expect(await client.ask({ action: 'subscribe', tenantId: 'live-bad', itemIds: ['a'] })).toEqual({
      type: 'subscribed',
      tenantId: 'live-bad',
      itemIds: ['a'],
    });
    expect(await client.ask({ action: 'unsubscribe', tenantId: 'live-bad', itemIds: ['a'] })).toEqual({
      type: 'unsubscribed',
      tenantId: 'live-bad',
      itemIds: ['a'],
    });
  });

  it('stops sending after unsubscribe', async () => {
    const client = await LiveClient.forTenant('live-unsub');
    await client.ask({ action: 'subscribe', tenantId: 'live-unsub' });
    await client.ask({ action: 'unsubscribe', tenantId: 'live-unsub' });
    const other = await LiveClient.forTenant('live-unsub');
    await other.ask({ action: 'subscribe', tenantId: 'live-unsub' });
    await http('PUT', '/tenants/live-unsub/items/x', 'live-unsub', widget);
    await other.next((f) => f.type === 'item.updated');
    expect(client.frames).toEqual([]);
  });
});

describe('live updates: connections that go', () => {
  it('removes a client that disconnects, and the others still get their messages', async () => {
    const tenant = 'live-leaving';
    const leaving = await LiveClient.forTenant(tenant);
    const staying = await LiveClient.forTenant(tenant);
    await leaving.ask({ action: 'subscribe', tenantId: tenant });
    await staying.ask({ action: 'subscribe', tenantId: tenant });
    const before = new Set(runtime.live!.connectionIds());
    leaving.close();
    await leaving.closed;
    const [gone] = [...before].filter((id) => !runtime.live!.connectionIds().includes(id));
    expect(gone).toBeDefined();
    await eventually(async () => expect(await recordsOf(gone!)).toEqual([]));

    // The tenant's subscribers, as the publisher finds them (its index), are the one left.
    const { Items: subscribers = [] } = await doc.send(
      new QueryCommand({
        TableName: connectionsTable,
        IndexName: 'ByTenant',
        KeyConditionExpression: 'tenantId = :t',
        ExpressionAttributeValues: { ':t': tenant },
      }),
    );
    expect(subscribers).toHaveLength(1);
    expect(subscribers[0]!.connectionId).not.toBe(gone);
    expect(runtime.live!.connectionIds()).toContain(subscribers[0]!.connectionId);

    await http('PUT', `/tenants/${tenant}/items/x`, tenant, widget);
    await staying.next((f) => f.type === 'item.updated');
    expect(staying.frames.filter((f) => f.type === 'item.updated')).toEqual([]);
  });

  it('deletes a subscriber whose connection is gone (410) and delivers to the rest', async () => {
    const tenant = 'live-stale';
    const client = await LiveClient.forTenant(tenant);
    await client.ask({ action: 'subscribe', tenantId: tenant });
    // A connection whose $disconnect never arrived: still subscribed, gone at API Gateway.
    const stale = 'StaleConnId0=';
    const expiresAt = Math.floor(Date.now() / 1000) + 3_600;
    await doc.send(
      new PutCommand({
        TableName: connectionsTable,
        Item: { pk: `CONN#${stale}`, sk: 'CONNECTION', connectionId: stale, tenantId: tenant, expiresAt },
      }),
    );
    await doc.send(
      new PutCommand({
        TableName: connectionsTable,
        Item: { pk: `CONN#${stale}`, sk: `TOPIC#TENANT#${tenant}`, tenantId: tenant, topic: `TENANT#${tenant}`, connectionId: stale, expiresAt },
      }),
    );
    await http('PUT', `/tenants/${tenant}/items/x`, tenant, widget);
    await client.next((f) => f.type === 'item.updated');
    await eventually(async () => expect(await recordsOf(stale)).toEqual([]));
  });
});

describe('live updates: the management API', () => {
  it('answers the AWS SDK: GET describes, POST sends, DELETE closes, and a gone connection is a GoneException', async () => {
    const management = new ApiGatewayManagementApiClient({
      endpoint: runtime.live!.callbackUrl,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    try {
      const before = new Set(runtime.live!.connectionIds());
      const client = await LiveClient.forTenant('live-managed');
      const [connectionId] = runtime.live!.connectionIds().filter((id) => !before.has(id));
      const described = await management.send(new GetConnectionCommand({ ConnectionId: connectionId }));
      expect(described.ConnectedAt).toBeInstanceOf(Date);
      expect(described.Identity?.SourceIp).toBe('127.0.0.1');

      await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: JSON.stringify({ hello: 'there' }) }));
      expect(await client.next((f) => f.hello === 'there')).toEqual({ hello: 'there' });

      await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
      await client.closed;
      await expect(management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: 'x' }))).rejects.toBeInstanceOf(GoneException);
      await expect(management.send(new GetConnectionCommand({ ConnectionId: connectionId }))).rejects.toBeInstanceOf(GoneException);
    } finally {
      management.destroy();
    }
  });
});

describe('live updates across a move', () => {
  it("tells nobody of the copies, and the target cell publishes the tenant's changes after the flip", async () => {
    const tenant = 'live-mover';
    const watcher = await LiveClient.forTenant(tenant);
    await watcher.ask({ action: 'subscribe', tenantId: tenant });
    expect((await http('PUT', `/tenants/${tenant}/items/a`, tenant, widget)).status).toBe(201);
    const { status, json } = await http('PUT', `/tenants/${tenant}/items/b`, tenant, widget);
    expect(status).toBe(201);
    await watcher.next((f) => f.type === 'item.updated' && f.itemId === 'b', 5_000);
    await watcher.next((f) => f.type === 'item.updated' && f.itemId === 'a', 5_000);
    expect(json).toMatchObject({ version: 1 });

    // The move runs in the local runtime's move workflow, as `cells move --local` starts it.
    const connection = connectLocal(path.join(outdir, 'local-runtime.json'));
    try {
      const from = (await connection.store.latestVersion())!;
      const before = await fetch(`${runtime.url}/tenants/${tenant}/items/a`, {
        headers: { authorization: `Bearer ${(await runtime.issuer!.issue({ tenantId: tenant })).access_token}` },
      });
      const sourceCell = before.headers.get('x-cell-id')!;
      const targetCell = sourceCell === 'cell-1' ? 'cell-2' : 'cell-1';
      const move = await new MoveEngine({ store: connection.store, moves: connection.moves, cellData: connection.cellData }).create(
        { kind: 'tenant', tenantId: tenant, to: targetCell },
        { by: 'e2e', graceSeconds: 0 },
      );
      await connection.runner!.start(move);
      let done = move;
      while (!FINISHED.has(done.state)) {
        await sleep(200);
        done = (await connection.moves.get(move.moveId))!;
      }
      expect(done).toMatchObject({ state: 'done' });
      expect((await connection.store.latestVersion())!.version).toBe(from.version + 1);

      const after = await fetch(`${runtime.url}/tenants/${tenant}/items/b`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${(await runtime.issuer!.issue({ tenantId: tenant })).access_token}`,
          'content-type': 'application/json',
          'if-match': '"1"',
        },
        body: JSON.stringify({ ...widget, stock: 3 }),
      });
      expect(after.status).toBe(200);
      expect(after.headers.get('x-cell-id')).toBe(targetCell);
      // The target's stream holds the copies before this write: had they been published, they would come first.
      const next = await watcher.next(() => true, 5_000);
      expect(next).toMatchObject({ type: 'item.updated', itemId: 'b', version: 2, item: { stock: 3 } });
      expect(JSON.stringify(next)).not.toContain('copyOf');
    } finally {
      connection.close();
    }
  });
});
