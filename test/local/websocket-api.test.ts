import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { LocalWebSocketApi } from '../../local/assembly.ts';
import { startWebSocketApi, WEBSOCKET_LIMITS, type LocalWebSocketEndpoint, type StartTimer } from '../../local/websocket-api.ts';
import { eventually } from '../support/eventually.ts';

/** Timers that move only when the test says so: the limits are checked to the millisecond, with no waiting. */
function manualTimers() {
  let now = 0;
  const timers = new Set<{ at: number; fire: () => void }>();
  const start: StartTimer = (ms, fire) => {
    const timer = { at: now + ms, fire };
    timers.add(timer);
    return { restart: () => void (timer.at = now + ms), cancel: () => void timers.delete(timer) };
  };
  const advance = (ms: number) => {
    now += ms;
    for (const timer of [...timers]) {
      if (timer.at > now) continue;
      timers.delete(timer);
      timer.fire();
    }
  };
  return { start, advance };
}

type Event = { requestContext: { routeKey: string; connectionId: string; disconnectStatusCode?: number; disconnectReason?: string }; body?: string };
const events: Event[] = [];
const host = {
  invoke: async (_name: string, event: unknown) => {
    events.push(event as Event);
    const { body } = event as Event;
    return { statusCode: 200, body: `got ${Buffer.byteLength(body ?? '')}` };
  },
};
const api: LocalWebSocketApi = {
  stackName: 'app-cell-1',
  logicalId: 'Live',
  apiId: 'abc123',
  stageName: 'live',
  routeSelectionExpression: '$request.body.action',
  routes: [
    { routeKey: '$connect', functionName: 'socket', returnsResponse: false },
    { routeKey: '$disconnect', functionName: 'socket', returnsResponse: false },
    { routeKey: '$default', functionName: 'socket', returnsResponse: true },
  ],
};

const timers = manualTimers();
let endpoint: LocalWebSocketEndpoint;
const clients: WebSocket[] = [];

beforeAll(async () => {
  endpoint = await startWebSocketApi({ host, api, region: 'eu-west-1', port: 0, startTimer: timers.start });
});
afterEach(() => {
  for (const client of clients.splice(0)) client.terminate();
});
afterAll(async () => {
  await endpoint?.close();
});

/** An open client, with its connection id (from the `$connect` event) and a promise of how it closes. */
async function connect() {
  const client = new WebSocket(endpoint.url);
  clients.push(client);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    client.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => client.once('open', () => resolve()).once('error', reject));
  const connectionId = events.findLast((e) => e.requestContext.routeKey === '$connect')!.requestContext.connectionId;
  return { client, closed, connectionId };
}

/** Sends a frame and waits for the route's answer: the connection is open and the frame counted as activity. */
function roundTrip(client: WebSocket, data: string): Promise<string> {
  return new Promise((resolve) => {
    client.once('message', (reply) => resolve(reply.toString()));
    client.send(data);
  });
}

async function disconnectOf(connectionId: string) {
  await eventually(() =>
    expect(events.some((e) => e.requestContext.routeKey === '$disconnect' && e.requestContext.connectionId === connectionId)).toBe(true),
  );
  return events.find((e) => e.requestContext.routeKey === '$disconnect' && e.requestContext.connectionId === connectionId)!.requestContext;
}

describe("the local WebSocket API's limits are API Gateway's", () => {
  it('are 128 KB a message, 10 minutes idle and 2 hours a connection', () => {
    expect(WEBSOCKET_LIMITS).toEqual({ maxMessageBytes: 131_072, idleTimeoutMs: 600_000, maxConnectionMs: 7_200_000 });
  });

  it('routes a frame of 128 KB, and closes the connection with 1009 on a larger one; $disconnect hears 1009', async () => {
    const { client, closed, connectionId } = await connect();
    expect(await roundTrip(client, 'x'.repeat(WEBSOCKET_LIMITS.maxMessageBytes))).toBe(`got ${WEBSOCKET_LIMITS.maxMessageBytes}`);
    client.send('x'.repeat(WEBSOCKET_LIMITS.maxMessageBytes + 1));
    expect(await closed).toEqual({ code: 1009, reason: 'Message too big' });
    expect(await disconnectOf(connectionId)).toMatchObject({ disconnectStatusCode: 1009, disconnectReason: 'Message too big' });
    expect(events.filter((e) => e.requestContext.routeKey === '$default' && e.requestContext.connectionId === connectionId)).toHaveLength(1);
  });

  it('delivers a post of 128 KB to @connections, and refuses a larger one with 413 PayloadTooLargeException', async () => {
    const { client, connectionId } = await connect();
    const post = (bytes: number) =>
      fetch(`${endpoint.callbackUrl}/@connections/${encodeURIComponent(connectionId)}`, { method: 'POST', body: 'y'.repeat(bytes) });
    const received = new Promise<string>((resolve) => client.once('message', (data) => resolve(data.toString())));
    expect((await post(WEBSOCKET_LIMITS.maxMessageBytes)).status).toBe(200);
    expect((await received).length).toBe(WEBSOCKET_LIMITS.maxMessageBytes);
    const refused = await post(WEBSOCKET_LIMITS.maxMessageBytes + 1);
    expect([refused.status, refused.headers.get('x-amzn-errortype')]).toEqual([413, 'PayloadTooLargeException']);
    // The connection is still open.
    expect(await roundTrip(client, 'ping')).toBe('got 4');
  });

  it('closes a connection idle for 10 minutes with 1001 Going away; each frame starts the 10 minutes again', async () => {
    const { client, closed, connectionId } = await connect();
    timers.advance(WEBSOCKET_LIMITS.idleTimeoutMs - 1);
    expect(await roundTrip(client, 'still here')).toBe('got 10');
    timers.advance(WEBSOCKET_LIMITS.idleTimeoutMs - 1);
    expect(await roundTrip(client, 'and here')).toBe('got 8');
    timers.advance(WEBSOCKET_LIMITS.idleTimeoutMs - 1);
    expect(endpoint.connectionIds()).toContain(connectionId);
    timers.advance(1);
    expect(await closed).toEqual({ code: 1001, reason: 'Going away' });
    expect(await disconnectOf(connectionId)).toMatchObject({ disconnectStatusCode: 1001, disconnectReason: 'Going away' });
    expect(endpoint.connectionIds()).not.toContain(connectionId);
  });

  it('closes any connection after 2 hours, however busy', async () => {
    const { client, closed, connectionId } = await connect();
    const step = 5 * 60 * 1000;
    for (let at = step; at < WEBSOCKET_LIMITS.maxConnectionMs; at += step) {
      timers.advance(step);
      expect(await roundTrip(client, 'busy')).toBe('got 4');
    }
    timers.advance(step);
    expect(await closed).toEqual({ code: 1001, reason: 'Going away' });
    expect((await disconnectOf(connectionId)).disconnectStatusCode).toBe(1001);
  });
});
