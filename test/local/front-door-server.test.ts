import { request } from 'node:http';
import type { ALBEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { startFrontDoor } from '../../local/front-door-server.ts';
import { FunctionTimeoutError, type FunctionHost } from '../../local/function-host.ts';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A front door whose target answers with `answer`, recording the events it got. */
async function frontDoor(answer: (event: ALBEvent) => unknown, multiValueHeaders = false) {
  const events: ALBEvent[] = [];
  const host = {
    invoke: async (_name: string, event: unknown) => {
      events.push(event as ALBEvent);
      return answer(event as ALBEvent);
    },
  } as unknown as FunctionHost;
  const server = await startFrontDoor({ host, functionName: 'router', multiValueHeaders, port: 0 });
  close = server.close;
  return { url: server.url, events };
}

const ok = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' };

describe('local front door (the ALB)', () => {
  it('sends the event an ALB sends, with single-value headers and raw query strings', async () => {
    const { url, events } = await frontDoor(() => ok);
    const response = await fetch(`${url}/tenants/t/items?limit=2&cursor=a%2Bb`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'if-match': '"1"' },
      body: '{"a":1}',
    });
    expect(await response.text()).toBe('ok');
    const [event] = events;
    expect(event).toMatchObject({
      httpMethod: 'PUT',
      path: '/tenants/t/items',
      queryStringParameters: { limit: '2', cursor: 'a%2Bb' },
      headers: { 'content-type': 'application/json', 'if-match': '"1"' },
      body: '{"a":1}',
      isBase64Encoded: false,
      requestContext: { elb: { targetGroupArn: expect.any(String) } },
    });
    expect(event?.headers?.['x-amzn-trace-id']).toMatch(/^Root=1-/);
  });

  it('base64-encodes binary bodies, and decodes base64 answers', async () => {
    const { url, events } = await frontDoor(() => ({
      statusCode: 200,
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from([1, 2, 3]).toString('base64'),
      isBase64Encoded: true,
    }));
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array([9, 8, 7]) });
    expect([...new Uint8Array(await response.arrayBuffer())]).toEqual([1, 2, 3]);
    expect(events[0]).toMatchObject({ isBase64Encoded: true, body: Buffer.from([9, 8, 7]).toString('base64') });
  });

  it('uses multi-value headers and query strings when the target group says so', async () => {
    const { url, events } = await frontDoor(() => ({ statusCode: 204, multiValueHeaders: { 'x-a': ['1', '2'] } }), true);
    const response = await fetch(`${url}/?q=1&q=2`);
    expect(response.status).toBe(204);
    expect(response.headers.get('x-a')).toBe('1, 2');
    expect(events[0]).toMatchObject({ multiValueQueryStringParameters: { q: ['1', '2'] } });
    expect(events[0]?.headers).toBeUndefined();
  });

  it.each([
    ['no status code', { body: 'x' }],
    ['a status code that is not a number', { statusCode: '200' }],
    ['a header value that is not a string', { statusCode: 200, headers: { 'content-length': 3 } }],
    ['a body that is not a string', { statusCode: 200, body: { a: 1 } }],
    ['no object at all', 'hello'],
  ])('answers 502 for a response with %s', async (_case, answer) => {
    const { url } = await frontDoor(() => answer);
    expect((await fetch(url)).status).toBe(502);
  });

  it('answers 502 when the target fails and 504 when it times out', async () => {
    const failing = await frontDoor(() => {
      throw new Error('crashed');
    });
    expect((await fetch(failing.url)).status).toBe(502);
    await close?.();
    const slow = await frontDoor(() => {
      throw new FunctionTimeoutError('router', 10);
    });
    expect((await fetch(slow.url)).status).toBe(504);
  });

  it('refuses a body declared over 1 MB before any of it is sent', async () => {
    const { url, events } = await frontDoor(() => ok);
    const { port } = new URL(url);
    // Headers only: a front door that waited for the body would never answer.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: '/tenants/t/items/i',
        headers: { 'content-length': String(512 * 1024 * 1024) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
    expect(events).toHaveLength(0);
  });

  it('refuses an undeclared (chunked) body as soon as it passes 1 MB, and reads no more of it', async () => {
    const { url, events } = await frontDoor(() => ok);
    const { port } = new URL(url);
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/tenants/t/orders', headers: { 'transfer-encoding': 'chunked' } });
      let answered: number | undefined;
      req.on('response', (res) => {
        res.resume();
        answered = res.statusCode;
      });
      // An endless upload: it stops only when the front door drops the connection.
      const pump = () => {
        while (!req.destroyed && sent < 512 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
      };
      req.on('close', () => (answered ? resolve(answered) : reject(new Error(`closed without an answer after ${sent} bytes`))));
      req.on('error', () => undefined);
      pump();
    });
    expect(status).toBe(413);
    expect(events).toHaveLength(0);
    // Socket buffers on both sides hold a few MB at most: nowhere near the 512 MB offered.
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it('answers 413 for a body over 1 MB without calling the target', async () => {
    const { url, events } = await frontDoor(() => ok);
    const response = await fetch(url, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect(events).toHaveLength(0);
  });
});
