import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ControlPlaneConnection } from '../../../control-plane/connect.ts';
import { routeTenant } from '../../../routing/routing.ts';
import { UnknownCellError } from '../../../control-plane/store.ts';
import { cellWorld, type CellWorld } from '../../support/moving.ts';
import { OperationError } from '../../../control-plane/errors.ts';
import { ConsoleModel, UnknownTenantError, UnreachableError } from '../../../tools/console/model.ts';
import { startConsoleServer, type ConsoleServer } from '../../../tools/console/server.ts';

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
    if (cellId === 'cell-9') throw new UnknownCellError('cell-9');
    if (cellId === 'cell-8') throw new OperationError('cell-8 is inactive');
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

function send(method: string, path: string, options: { host?: string; origin?: string; type?: string; body?: string } = {}) {
  return sendTo(server, method, path, options);
}

function sendTo(
  target: ConsoleServer,
  method: string,
  path: string,
  options: { host?: string; origin?: string; type?: string; body?: string } = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const url = new URL(target.url);
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
      ['POST', '/api/cells/cell-9/activate', '{}', 404, /no cell "cell-9" is registered/],
      ['POST', '/api/cells/cell-8/activate', '{}', 409, /cell-8 is inactive/],
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

describe('the console API over a real control plane: 400 malformed, 404 unknown, 409 a conflict with the state', () => {
  let world: CellWorld;
  let real: ConsoleServer;
  let dir: string;
  beforeAll(async () => {
    world = await cellWorld(inject('dynamoEndpoint'));
    dir = mkdtempSync(path.join(tmpdir(), 'console-api-'));
    const connection = {
      store: world.store,
      moves: world.moves,
      cellData: world.cellData,
      // Moves are created and recorded; none runs.
      runner: { start: async () => undefined },
      target: 'test control plane',
      close: () => undefined,
    } as unknown as ControlPlaneConnection;
    const health = { read: async () => ({ health: {}, traffic: { slotSeconds: 5, newestSlotAt: 0, cells: {} } }) };
    const consoleModel = new ConsoleModel({
      connection,
      health,
      mode: 'local',
      appName: 'shop',
      by: 'test',
      defaultQuota: { rate: 100, burst: 200 },
      planFile: (v) => path.join(dir, `plan-v${v}.json`),
    });
    real = await startConsoleServer(consoleModel);
  });
  afterAll(async () => {
    await real?.close();
    await world?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    // Malformed: 400.
    ['GET', '/api/tenants/%ZZ', undefined, 400, /not a well-formed URL path/],
    ['GET', '/%E0%A4%A', undefined, 400, /not a well-formed URL path/],
    ['GET', '/api/buckets/%E0%A4%A', undefined, 400, /not a well-formed URL path/],
    ['GET', '/api/tenants/a%20b', undefined, 400, /tenant id "a b" must be 1 to 128 characters/],
    ['GET', '/api/buckets/-1', undefined, 400, /a bucket is a whole number, not "-1"/],
    ['GET', '/api/versions/x/diff', undefined, 400, /a version is a whole number, not "x"/],
    ['POST', '/api/moves', '{"kind":"tenant","tenantId":"a b","to":"cell-2"}', 400, /tenant id "a b" must be/],
    ['POST', '/api/moves', '{"kind":"bucket","first":9,"last":5,"to":"cell-2"}', 400, /ends at or after its start/],
    ['POST', '/api/moves', '{"kind":"bucket","first":20000,"last":20001,"to":"cell-2"}', 400, /buckets are 0 to 16383/],
    // Unknown: 404.
    ['GET', '/api/tenants/ghost', undefined, 404, /tenant ghost is unknown/],
    ['GET', '/api/buckets/20000', undefined, 404, /no bucket 20000: buckets are 0 to 16383/],
    ['GET', '/api/versions/999999/diff', undefined, 404, /no map version 999999/],
    ['POST', '/api/cells/cell-9/drain', '{}', 404, /no cell "cell-9" is registered/],
    ['POST', '/api/cells/cell-9/activate', '{}', 404, /no cell "cell-9" is registered/],
    ['POST', '/api/moves', '{"kind":"tenant","tenantId":"acme","to":"cell-9"}', 404, /no cell "cell-9" is registered/],
    ['POST', '/api/moves/no-such-move/abort', '{}', 404, /no move "no-such-move"/],
    ['POST', '/api/moves/no-such-move/revert', '{}', 404, /no move "no-such-move"/],
    ['GET', '/api/nothing', undefined, 404, /nothing at \/api\/nothing/],
    // A conflict with the current state: 409.
    ['POST', '/api/apply', '{}', 409, /no plan at/],
  ] as Array<[string, string, string | undefined, number, RegExp]>)('%s %s answers %#', async (method, url, body, status, message) => {
    const answer = await sendTo(real, method, url, body === undefined ? {} : { type: 'application/json', body });
    expect([answer.status, JSON.parse(answer.body).error]).toEqual([status, expect.stringMatching(message)]);
  });

  it('answers 409 for a move of a tenant to the cell it is in, and 200 for what exists', async () => {
    const { cellId } = JSON.parse((await sendTo(real, 'GET', '/api/buckets/0')).body) as { cellId: string };
    expect(cellId).toMatch(/^cell-\d$/);
    expect((await sendTo(real, 'GET', '/api/state')).status).toBe(200);
    const here = (await world.store.latestVersion())!;
    const tenantId = 'acme';
    const owner = routeTenant(here.map, here.overrides, tenantId).cellId;
    const same = await sendTo(real, 'POST', '/api/moves', {
      type: 'application/json',
      body: JSON.stringify({ kind: 'tenant', tenantId, to: owner }),
    });
    expect([same.status, JSON.parse(same.body).error]).toEqual([409, `${tenantId} is already in ${owner}`]);
  });
});
