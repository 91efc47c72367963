import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationError } from '../../control-plane/operations.ts';
import { UnknownTenantError, UnreachableError, type ConsoleModel } from '../../console/model.ts';
import { startConsoleServer, type ConsoleServer } from '../../console/server.ts';

const calls: unknown[][] = [];
/** A model whose answers the test picks: only the server's own work is under test. */
const model = {
  snapshot: async () => {
    throw new UnreachableError('the control plane cannot be read: connect ECONNREFUSED');
  },
  tenant: async (tenantId: string) => {
    throw new UnknownTenantError(`tenant ${tenantId} is unknown`);
  },
  bucket: async (bucket: number) => ({ bucket, cellId: 'cell-1', tenants: 2 }),
  setStatus: async (cellId: string, status: string) => {
    calls.push(['setStatus', cellId, status]);
    if (cellId === 'cell-9') throw new OperationError('no cell "cell-9" is registered');
    return { cellId, status };
  },
  startMove: async (move: unknown) => {
    calls.push(['startMove', move]);
    return { moveId: 'm-1' };
  },
} as unknown as ConsoleModel;

let server: ConsoleServer;
beforeAll(async () => {
  server = await startConsoleServer(model);
});
afterAll(async () => {
  await server?.close();
});

function send(method: string, path: string, options: { host?: string; origin?: string; type?: string; body?: string } = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: url.port,
        method,
        path,
        headers: {
          host: options.host ?? url.host,
          ...(options.origin && { origin: options.origin }),
          ...(options.type && { 'content-type': options.type }),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('the console server', () => {
  it('listens on 127.0.0.1 only and serves the page and its bundled script, with nothing from elsewhere allowed', async () => {
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    const page = await send('GET', '/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<script type="module" src="/app.js"></script>');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    const script = await send('GET', '/app.js');
    expect(script.status).toBe(200);
    expect(script.body.length).toBeGreaterThan(1000);
    expect(script.body).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
  });

  it('refuses another host name (DNS rebinding) and actions from another origin or without JSON', async () => {
    expect((await send('GET', '/api/state', { host: 'attacker.example:80' })).status).toBe(403);
    const foreign = await send('POST', '/api/cells/cell-1/drain', { origin: 'https://attacker.example', type: 'application/json', body: '{}' });
    expect(foreign.status).toBe(403);
    expect((await send('POST', '/api/cells/cell-1/drain', { type: 'text/plain', body: '{}' })).status).toBe(415);
    expect(calls).toEqual([]);
    const own = await send('POST', '/api/cells/cell-1/drain', { origin: server.url, type: 'application/json', body: '{}' });
    expect([own.status, JSON.parse(own.body)]).toEqual([200, { cellId: 'cell-1', status: 'draining' }]);
  });

  it('answers refusals and failures with their own message and a fitting status', async () => {
    const cases: Array<[string, string, string | undefined, number, RegExp]> = [
      ['GET', '/api/state', undefined, 503, /cannot be read: connect ECONNREFUSED/],
      ['GET', '/api/tenants/ghost', undefined, 404, /tenant ghost is unknown/],
      ['GET', '/api/buckets/abc', undefined, 400, /a bucket is a whole number, not "abc"/],
      ['POST', '/api/cells/cell-9/activate', '{}', 409, /no cell "cell-9" is registered/],
      ['POST', '/api/moves', '{"kind":"tenant","to":"cell-2"}', 400, /tenantId/],
      ['POST', '/api/moves', '{"kind":"bucket","first":9,"last":5,"to":"cell-2"}', 400, /ends at or after its start/],
      ['POST', '/api/moves', 'not json', 400, /not JSON/],
      ['GET', '/api/nothing', undefined, 404, /nothing at \/api\/nothing/],
      ['DELETE', '/api/state', undefined, 405, /GET or POST only/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const answer = await send(method, path, body === undefined ? {} : { type: 'application/json', body });
      expect([path, answer.status]).toEqual([path, status]);
      expect(JSON.parse(answer.body).error).toMatch(message);
    }
    const started = await send('POST', '/api/moves', { type: 'application/json', body: '{"kind":"bucket","first":5,"last":9,"to":"cell-2"}' });
    expect(started.status).toBe(202);
    expect(calls.at(-1)).toEqual(['startMove', { kind: 'bucket', first: 5, last: 9, to: 'cell-2' }]);
  });
});
