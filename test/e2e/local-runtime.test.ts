import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { evenSplit } from '../../routing/routing.ts';
import { fromRoot } from '../../lib/paths.ts';
import { startLocalRuntime, type LocalRuntime } from '../../local/runtime.ts';
import { eventually } from '../support/eventually.ts';
import { isAlive, runTool } from '../support/processes.ts';
import { banner } from '../../local/banner.ts';
import { testContext, TEST_CONFIG } from '../support/synth.ts';
import { isValidId, tenantIdOf } from '@item-master/shared';
import { cellOfBucket } from '../support/routing.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb-local.ts';
import { connectLocal } from '../../control-plane/connect.ts';
import { MoveEngine } from '../../control-plane/move-engine.ts';

/**
 * The service as `npm start` runs it, driven over real HTTP: ALB emulation →
 * router bundle → Lambda Invoke API → cell bundle → DynamoDB Local.
 */
let runtime: LocalRuntime;
let outdir: string;
const functionOutput: string[] = [];

beforeAll(async () => {
  outdir = mkdtempSync(path.join(tmpdir(), 'item-master-e2e-'));
  runtime = await startLocalRuntime({
    port: 0,
    webSocketPort: 0,
    outdir,
    dynamoEndpoint: inject('dynamoEndpoint'),
    // Its own app name: its own tables and control plane in the shared DynamoDB Local.
    context: testContext({ appName: 'e2e', routingRefreshSeconds: 1 }),
    stateFile: path.join(outdir, 'local-runtime.json'),
    functionOutput: (line) => functionOutput.push(line),
  });
});
afterAll(async () => {
  const pids = runtime?.pids() ?? [];
  await runtime?.stop();
  rmSync(outdir, { recursive: true, force: true });
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
});

const cells = [...TEST_CONFIG.cells];
const map = evenSplit(cells);
const widget = { title: 'Widget', price: { amount: 1299, currency: 'EUR' }, stock: 10 };

const tokens = new Map<string, string>();
/** A token of the local issuer for the tenant, with every scope. */
async function tokenFor(tenantId: string, issuer = runtime.issuer): Promise<string> {
  if (!issuer) throw new Error('the runtime has no issuer');
  const key = `${issuer.url} ${tenantId}`;
  if (!tokens.has(key)) tokens.set(key, (await issuer.issue({ tenantId })).access_token);
  return tokens.get(key)!;
}

/** A request to the front door, with a valid token of the path's tenant unless the headers bring their own (or `authorization: ''` for none). */
async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const tenantId = tenantIdOf(path);
  const auth = 'authorization' in headers || !tenantId || !isValidId(tenantId) ? {} : { authorization: `Bearer ${await tokenFor(tenantId)}` };
  const { authorization = undefined, ...rest } = headers;
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: {
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...auth,
      ...(authorization && { authorization }),
      ...rest,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

/** A tenant id that the bucket map puts in the given cell. */
function tenantIn(cellId: string, prefix = 'tenant'): string {
  for (let n = 0; ; n += 1) if (cellOfBucket(map, `${prefix}-${n}`) === cellId) return `${prefix}-${n}`;
}

describe('the front door as deployed (single-value headers)', () => {
  /** Sends the request with each Authorization value as a header line of its own. */
  function withAuthorizations(path: string, values: string[]): Promise<number> {
    const { port } = new URL(runtime.url);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'GET',
          headers: ['host', `127.0.0.1:${port}`, ...values.flatMap((value) => ['authorization', value])],
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it('passes the last of two Authorization headers, as the ALB does, and the router judges that one', async () => {
    const tenantId = tenantIn('cell-1', 'doubled');
    const valid = `Bearer ${await tokenFor(tenantId)}`;
    expect(await withAuthorizations(`/tenants/${tenantId}/items`, ['Bearer forged', valid])).toBe(200);
    expect(await withAuthorizations(`/tenants/${tenantId}/items`, [valid, 'Bearer forged'])).toBe(401);
  });

  it('answers HEAD on items with items.read, without a body', async () => {
    const tenantId = tenantIn('cell-2', 'head');
    expect((await http('PUT', `/tenants/${tenantId}/items/h`, widget)).status).toBe(201);
    const head = await http('HEAD', `/tenants/${tenantId}/items/h`);
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers.get('etag')).toBe('"1"');
    expect(head.headers.get('x-cell-id')).toBe('cell-2');
  });
});

describe('npm start: the items API end to end', () => {
  it('answers /health from the router with every cell', async () => {
    const health = await http('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.json).toEqual({
      status: 'ok',
      cells: cells.map((cellId) => ({ cellId, status: 'active' })),
      routing: { version: 1, source: 'store' },
    });
  });

  it('serves every items route through the front door', async () => {
    const tenant = tenantIn('cell-1');
    const item = `/tenants/${tenant}/items/widget-1`;
    const created = await http('PUT', item, widget);
    expect(created.status).toBe(201);
    expect(created.headers.get('etag')).toBe('"1"');

    const replaced = await http('PUT', item, { ...widget, stock: 12 });
    expect(replaced.status).toBe(200);
    expect(replaced.json.version).toBe(2);

    const read = await http('GET', item);
    expect(read).toMatchObject({ status: 200, json: { tenantId: tenant, itemId: 'widget-1', stock: 12, version: 2 } });

    expect((await http('PATCH', item, { stock: 1 })).status).toBe(428);
    expect((await http('PATCH', item, { stock: 1 }, { 'if-match': '"1"' })).status).toBe(409);
    const patched = await http('PATCH', item, { stock: 1 }, { 'if-match': read.headers.get('etag') as string });
    expect(patched).toMatchObject({ status: 200, json: { stock: 1, version: 3 } });

    for (const id of ['a', 'b', 'c']) await http('PUT', `/tenants/${tenant}/items/${id}`, widget);
    const first = await http('GET', `/tenants/${tenant}/items?limit=2`);
    expect(first.status).toBe(200);
    expect(first.json.items).toHaveLength(2);
    const rest = await http('GET', `/tenants/${tenant}/items?limit=2&cursor=${encodeURIComponent(first.json.cursor)}`);
    expect([...first.json.items, ...rest.json.items].map((i: { itemId: string }) => i.itemId).sort()).toEqual(['a', 'b', 'c', 'widget-1']);

    expect((await http('DELETE', item)).status).toBe(204);
    expect((await http('GET', item)).status).toBe(404);
    expect((await http('DELETE', item)).status).toBe(404);
  });

  it('answers bad input with the error shape, and nothing turns into a 5xx', async () => {
    const tenant = tenantIn('cell-2');
    const cases: Array<[string, string, unknown, number]> = [
      ['PUT', `/tenants/${tenant}/items/x`, '{"title":', 400],
      ['PUT', `/tenants/${tenant}/items/x`, { ...widget, extra: true }, 400],
      ['PUT', `/tenants/${tenant}/items/bad$id`, widget, 400],
      ['PUT', `/tenants/${tenant}/items/x`, { ...widget, description: 'x'.repeat(300 * 1024) }, 413],
      ['GET', `/tenants/${tenant}/items?limit=500`, undefined, 400],
      ['GET', `/tenants/${tenant}/nothing`, undefined, 404],
      ['GET', '/nowhere', undefined, 404],
      ['POST', `/tenants/${tenant}/items/x`, widget, 405],
    ];
    for (const [method, path, body, status] of cases) {
      const result = await http(method, path, body);
      expect(result.status, `${method} ${path}`).toBe(status);
      expect(result.json.error.code, `${method} ${path}`).toEqual(expect.any(String));
    }
  });

  it('stamps x-cell-id, and tenants land on the cells their buckets map to', async () => {
    for (const cellId of cells) {
      const tenant = tenantIn(cellId);
      const result = await http('PUT', `/tenants/${tenant}/items/probe`, widget);
      expect(result.status).toBe(201);
      expect(result.headers.get('x-cell-id')).toBe(cellId);
      expect((await http('GET', `/tenants/${tenant}/items/probe`)).headers.get('x-cell-id')).toBe(cellId);
    }
  });

  it('keeps each cell to its own table', async () => {
    const tenant = tenantIn('cell-3');
    await http('PUT', `/tenants/${tenant}/items/only-here`, widget);
    const cellTables = runtime.assembly.tables.map((table) => table.tableName).filter((name) => name.includes('-cell-'));
    expect(new Set(cellTables).size).toBe(3);
    const { DynamoDBClient, GetItemCommand } = await import('@aws-sdk/client-dynamodb');
    const client = new DynamoDBClient({
      endpoint: runtime.dynamoEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const found = [];
      for (const tableName of cellTables) {
        const { Item } = await client.send(
          new GetItemCommand({ TableName: tableName, Key: { pk: { S: `TENANT#${tenant}` }, sk: { S: 'ITEM#only-here' } } }),
        );
        if (Item) found.push(tableName);
      }
      expect(found).toHaveLength(1);
      expect(found[0]).toContain('cell-3');
    } finally {
      client.destroy();
    }
  });

  it("runs each function with the template's environment, tokens resolved to local names", () => {
    const { assembly } = runtime;
    const api = assembly.functions.find((fn) => fn.functionName === 'e2e-dev-cell-1-api')!;
    expect(api).toBeDefined();
    // Every variable of every function holds a plain value: no token of the template is left.
    for (const fn of assembly.functions) {
      const env = runtime.environment(fn.functionName);
      for (const name of Object.keys(fn.environment)) {
        expect([fn.functionName, name, typeof env[name]]).toEqual([fn.functionName, name, 'string']);
        expect([fn.functionName, name, env[name]]).not.toEqual([
          fn.functionName,
          name,
          expect.stringMatching(/"?(Ref|Fn::[A-Za-z]+)"?|\[object Object\]/),
        ]);
      }
    }
    const cell = runtime.environment('e2e-dev-cell-1-api');
    const table = assembly.tables.find((t) => t.stackName === api.stackName && t.logicalId === (api.environment.TABLE_NAME as { Ref: string }).Ref)!;
    const machine = assembly.stateMachines.find((m) => m.stackName === api.stackName)!;
    expect(cell).toMatchObject({
      CELL_ID: 'cell-1',
      TABLE_NAME: table.tableName,
      STATE_MACHINE_ARN: `arn:aws:states:${assembly.region}:000000000000:stateMachine:${machine.name}`,
      AWS_ENDPOINT_URL_DYNAMODB: runtime.dynamoEndpoint,
      AWS_LAMBDA_FUNCTION_NAME: 'e2e-dev-cell-1-api',
    });
    expect(table.tableName).toMatch(/^e2e-dev-cell-1-/);
    const router = runtime.environment(assembly.frontDoor.functionName);
    expect(router.USER_POOL_ID).toBe(assembly.userPools[0]!.userPoolId);
    expect(router.CONTROL_PLANE_TABLE).toBe(
      assembly.tables.find((t) => t.stackName === 'e2e-dev-control-plane' && t.tableName.includes('Registry'))!.tableName,
    );
    expect(Object.values(JSON.parse(router.SHIPPED_ROUTING!).functions)).toEqual(['cell-1', 'cell-2', 'cell-3'].map((c) => `e2e-dev-${c}-api:live`));
  });
});

describe('npm start: every server on 127.0.0.1', () => {
  /** The local addresses listening on a TCP port, as the kernel lists them (Linux /proc), in hex. */
  function listeners(port: number): string[] {
    return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((table) =>
      readFileSync(table, 'utf8')
        .split('\n')
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter((fields) => fields[3] === '0A' && Number.parseInt(fields[1]!.split(':')[1]!, 16) === port)
        .map((fields) => fields[1]!.split(':')[0]!),
    );
  }
  const LOOPBACK = new Set(['0100007F', '0000000000000000FFFF00000100007F', '00000000000000000000000001000000']);

  it('binds the front door, the Lambda, Step Functions and WebSocket APIs, the token issuer and DynamoDB Local to loopback only', () => {
    const state = JSON.parse(readFileSync(path.join(outdir, 'local-runtime.json'), 'utf8')) as Record<string, string>;
    const urls = [state.url, runtime.lambdaUrl, state.dynamoEndpoint, state.stepFunctionsEndpoint, state.liveUrl, runtime.issuer?.url].filter(
      Boolean,
    ) as string[];
    expect(urls.length).toBe(6);
    for (const url of urls) {
      const { hostname, port } = new URL(url);
      expect([url, hostname]).toEqual([url, '127.0.0.1']);
      const bound = listeners(Number(port));
      expect([url, bound.length > 0]).toEqual([url, true]);
      expect([url, bound.filter((address) => !LOOPBACK.has(address))]).toEqual([url, []]);
    }
  });
});

describe('npm start: orders end to end', () => {
  const shop = tenantIn('cell-2', 'shop');
  const orderBody = (token: string, quantity = 2) => ({ lines: [{ itemId: 'lamp', quantity }], customerId: 'c-1', payment: { token } });
  const readOrder = async (location: string) => (await http('GET', location)).json;

  it('takes an order through the ALB path: reserved, paid, confirmed, the stock taken and order.confirmed readable', async () => {
    expect((await http('PUT', `/tenants/${shop}/items/lamp`, { ...widget, stock: 5 })).status).toBe(201);
    const placed = await http('POST', `/tenants/${shop}/orders`, orderBody('tok_ok'), { 'idempotency-key': 'e2e-order-1' });
    expect(placed.status).toBe(202);
    expect(placed.headers.get('x-cell-id')).toBe('cell-2');
    const { orderId } = placed.json;
    const location = placed.headers.get('location')!;
    await eventually(async () => expect((await readOrder(location)).status).toBe('CONFIRMED'), 15_000);
    const order = await readOrder(location);
    expect(order).toMatchObject({ orderId, lines: [{ itemId: 'lamp', quantity: 2 }], reservedAt: expect.any(String), paidAt: expect.any(String) });
    expect((await http('GET', `/tenants/${shop}/items/lamp`)).json.stock).toBe(3);

    const listed = await fetch(`${runtime.url}/_local/queues`).then((r) => r.json() as Promise<{ queues: Array<{ name: string; url: string }> }>);
    const events = listed.queues.find((q) => q.name.startsWith('e2e-dev-cell-2-OrderEvents') && !q.name.includes('DeadLetters'))!;
    const { messages } = (await fetch(`${runtime.url}${events.url}`).then((r) => r.json())) as { messages: Array<{ body: any }> };
    expect(messages.map((m) => m.body)).toContainEqual(expect.objectContaining({ type: 'order.confirmed', tenantId: shop, orderId }));

    // The same key again: the same order, and still one execution.
    const again = await http('POST', `/tenants/${shop}/orders`, orderBody('tok_ok'), { 'idempotency-key': 'e2e-order-1' });
    expect(again.json).toEqual({ orderId, status: 'CONFIRMED' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const executions = runtime.stepFunctions.stateMachineArns().flatMap((arn) => runtime.stepFunctions.list(arn));
    expect(executions.filter((e) => e.name === orderId)).toHaveLength(1);
  });

  it('gives the stock back when the card is declined', async () => {
    const before = (await http('GET', `/tenants/${shop}/items/lamp`)).json.stock;
    const placed = await http('POST', `/tenants/${shop}/orders`, orderBody('tok_declined', 1), { 'idempotency-key': 'e2e-order-2' });
    const location = placed.headers.get('location')!;
    await eventually(async () => expect((await readOrder(location)).status).toBe('FAILED'), 15_000);
    expect((await readOrder(location)).failure).toEqual({ reason: 'payment_declined' });
    expect((await http('GET', `/tenants/${shop}/items/lamp`)).json.stock).toBe(before);
  });

  it('refuses an order without orders.write, or without an Idempotency-Key, before anything starts', async () => {
    const count = runtime.stepFunctions.stateMachineArns().flatMap((arn) => runtime.stepFunctions.list(arn)).length;
    const reader = (await runtime.issuer!.issue({ tenantId: shop, scopes: ['items.read', 'items.write'] })).access_token;
    const refused = await http('POST', `/tenants/${shop}/orders`, orderBody('tok_ok'), {
      authorization: `Bearer ${reader}`,
      'idempotency-key': 'e2e-x',
    });
    expect(refused.status).toBe(403);
    const keyless = await http('POST', `/tenants/${shop}/orders`, orderBody('tok_ok'));
    expect(keyless.status).toBe(400);
    expect(runtime.stepFunctions.stateMachineArns().flatMap((arn) => runtime.stepFunctions.list(arn))).toHaveLength(count);
    expect((await fetch(`${runtime.url}/_local/queues/no-such-queue`)).status).toBe(404);
  });
});

describe('reloading (npm run dev)', () => {
  it('re-synthesizes and reloads only what changed; a new cell registers and takes no bucket by itself', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'item-master-reload-'));
    const context = testContext({ appName: 'e2e-reload', routingRefreshSeconds: 1 });
    const small = await startLocalRuntime({
      port: 0,
      webSocketPort: 0,
      outdir: dir,
      dynamoEndpoint: inject('dynamoEndpoint'),
      context: { ...context, cells: ['cell-1'] },
      stateFile: path.join(dir, 'local-runtime.json'),
      functionOutput: () => undefined,
    });
    const cellsOf = async () =>
      ((await fetch(`${small.url}/health`).then((r) => r.json())) as { cells: Array<{ cellId: string }> }).cells.map((c) => c.cellId);
    try {
      expect(await cellsOf()).toEqual(['cell-1']);
      expect(await small.reload()).toEqual([]);
      const changed = await small.reload({ ...context, cells: ['cell-1', 'cell-2'] });
      // The new cell's functions, and the router (its shipped map names the new cell); nothing else.
      const cell2Functions = small.assembly.functions.filter((fn) => fn.stackName === 'e2e-reload-dev-cell-2').map((fn) => fn.functionName);
      expect(cell2Functions).toContain('e2e-reload-dev-cell-2-api');
      expect(changed.sort()).toEqual([...cell2Functions, small.assembly.frontDoor.functionName].sort());
      await eventually(async () => expect(await cellsOf()).toEqual(['cell-1', 'cell-2']));
      // cell-2 is registered, but the map still sends every tenant to cell-1.
      const twoCells = evenSplit(['cell-1', 'cell-2']);
      const tenant = Array.from({ length: 50 }, (_, n) => `t-${n}`).find((t) => cellOfBucket(twoCells, t) === 'cell-2')!;
      const put = await fetch(`${small.url}/tenants/${tenant}/items/x`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await tokenFor(tenant, small.issuer)}` },
        body: JSON.stringify(widget),
      });
      expect(put.status).toBe(201);
      expect(put.headers.get('x-cell-id')).toBe('cell-1');
      // Removing the cell again deregisters it, as deleting its stack would.
      await small.reload({ ...context, cells: ['cell-1'] });
      await eventually(async () => expect(await cellsOf()).toEqual(['cell-1']));
    } finally {
      await small.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `npm run token -- <args>` against this runtime (spawned, never spawnSync: the runtime answers from this process). */
function tokenCli(...args: string[]) {
  return runTool('local/token.ts', [...args, '--local-state', path.join(outdir, 'local-runtime.json')]);
}

describe('npm start: authentication end to end', () => {
  it('serves a tenant with a token from npm run token, and the reader only reads', async () => {
    const tenant = tenantIn('cell-2', 'auth');
    const writer = await tokenCli('--tenant', tenant);
    expect(writer.code).toBe(0);
    const token = writer.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    expect((await http('PUT', `/tenants/${tenant}/items/x`, widget, { authorization: `Bearer ${token}` })).status).toBe(201);

    const reader = (await tokenCli('--tenant', tenant, '--scope', 'items.read')).stdout.trim();
    expect((await http('GET', `/tenants/${tenant}/items/x`, undefined, { authorization: `Bearer ${reader}` })).status).toBe(200);
    const refused = await http('PATCH', `/tenants/${tenant}/items/x`, { stock: 1 }, { authorization: `Bearer ${reader}`, 'if-match': '"1"' });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toContain('scope="e2e/items.write"');
    expect(refused.headers.get('x-cell-id')).toBeNull();
    // Nothing changed.
    expect((await http('GET', `/tenants/${tenant}/items/x`)).json.stock).toBe(10);
  });

  it('refuses no token, a bad one and another tenant’s before any cell sees the request', async () => {
    const tenant = tenantIn('cell-1', 'auth');
    const before = functionOutput.length;
    const none = await http('GET', `/tenants/${tenant}/items`, undefined, { authorization: '' });
    expect([none.status, none.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="e2e"']);
    expect(none.json.error.code).toBe('unauthorized');
    const garbage = await http('GET', `/tenants/${tenant}/items`, undefined, { authorization: 'Bearer not.a.token' });
    expect(garbage.status).toBe(401);
    const stolen = await http('PUT', `/tenants/${tenant}/items/x`, widget, { authorization: `Bearer ${await tokenFor('someone-else')}` });
    expect(stolen.status).toBe(403);
    expect(stolen.json.error.message).toBe('the token is for another tenant');
    expect((await http('GET', `/tenants/${tenant}/items/x`)).status).toBe(404);
    // The router logged each refusal, and no token (nor its signature) reached any log line.
    const logged = functionOutput.slice(before);
    expect(logged.filter((line) => line.includes('request refused')).length).toBeGreaterThanOrEqual(3);
    const token = await tokenFor('someone-else');
    expect(functionOutput.some((line) => line.includes(token.split('.')[2]!))).toBe(false);
  });

  it('speaks of its own app name only: the banner, the challenges and the metrics', async () => {
    const text = banner(runtime, { readySeconds: 1 });
    expect(text).toContain('e2e is running locally');
    expect(text).toMatch(/cells +cell-1, cell-2, cell-3$/m);
    const refused = await http('GET', '/tenants/acme/items', undefined, { authorization: 'Bearer not.a.token' });
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer realm="e2e", error="invalid_token"/);
    const said = [text, JSON.stringify(refused.json), ...refused.headers.values(), ...functionOutput];
    expect(said.filter((line) => /item.?master/i.test(line))).toEqual([]);
    const namespaces = functionOutput.flatMap((line) => [...line.matchAll(/"Namespace":"([^"]+)"/g)].map((match) => match[1]));
    expect(namespaces.length).toBeGreaterThan(0);
    expect(new Set(namespaces)).toEqual(new Set(['E2e']));
  });

  it('leaves /health and preflights open', async () => {
    expect((await http('GET', '/health')).status).toBe(200);
    expect((await http('OPTIONS', '/tenants/acme/items', undefined, { authorization: '' })).status).toBe(204);
  });

  it('npm run token says what is wrong', async () => {
    const missing = await tokenCli();
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--tenant is required');
    const badScope = await tokenCli('--tenant', 'acme', '--scope', 'items.delete');
    expect(badScope.code).toBe(1);
    expect(badScope.stderr).toMatch(/^error: scopes.0: /);
  });
});

/** Retries an assertion until it holds: the router picks up control-plane changes within its refresh interval. */
/** `npm run cells -- <args> --local` against this runtime. */
function cellsCli(...args: string[]) {
  return runTool('tools/cells/cli.ts', [...args, '--local', '--local-state', path.join(outdir, 'local-runtime.json')]);
}

describe('npm run cells -- --local', () => {
  it('lists the cells the deploy registered, with their buckets', async () => {
    const { code, stdout } = await cellsCli('list', '--json');
    expect(code).toBe(0);
    const listing = JSON.parse(stdout);
    expect(listing.version).toBeGreaterThanOrEqual(1);
    expect(listing.cells.map((c: any) => [c.cellId, c.status, c.weight, c.buckets])).toEqual([
      ['cell-1', 'active', 1, 5462],
      ['cell-2', 'active', 1, 5461],
      ['cell-3', 'active', 1, 5461],
    ]);
    const table = await cellsCli('list');
    expect(table.stdout).toMatch(/^cell-2\s+active\s+1\s+5461\s+0\s+e2e-dev-cell-2-DataTable/m);
  });

  it('routes, pins (the router follows within its refresh interval), refuses to strand data, and unpins', async () => {
    const homeCell = 'cell-1';
    const tenant = tenantIn(homeCell);
    expect((await http('PUT', `/tenants/${tenant}/items/pinned`, widget)).status).toBe(201);
    const route = await cellsCli('route', tenant);
    expect(route.stdout).toContain(`${tenant} → ${homeCell} (active): bucket`);

    const refused = await cellsCli('pin', tenant, 'cell-2');
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toEqual([
      `error: ${tenant} already has data in ${homeCell}: routing it to cell-2 would hide that data. Move it with its data instead: npm run cells -- move tenant ${tenant} cell-2`,
    ]);

    const fresh = tenantIn('cell-3', 'no-data-yet');
    const pinned = await cellsCli('pin', fresh, 'cell-2');
    expect(pinned.code).toBe(0);
    expect(pinned.stdout).toMatch(new RegExp(`^${fresh} pinned to cell-2 in map version \\d+`));
    await eventually(async () => expect((await http('GET', `/tenants/${fresh}/items`)).headers.get('x-cell-id')).toBe('cell-2'));
    expect(JSON.parse((await cellsCli('route', fresh, '--json')).stdout)).toMatchObject({ cellId: 'cell-2', reason: 'override' });

    const unpinned = await cellsCli('unpin', fresh);
    expect(unpinned.stdout).toContain(`back to cell-3 by bucket`);
    const history = JSON.parse((await cellsCli('history', '--json')).stdout);
    expect(history.slice(0, 2).map((v: any) => v.change)).toEqual([
      `unpin ${fresh} (back to cell-3 by bucket ${JSON.parse((await cellsCli('route', fresh, '--json')).stdout).bucket})`,
      `pin ${fresh} to cell-2`,
    ]);
  });

  it('a router whose map is stale sends a write to the old cell, which refuses it as misdirected; it re-reads the map and the right cell serves it', async () => {
    const tenant = tenantIn('cell-1', 'stale-router');
    // The router's map is fresh now; the pin takes longer than its refresh interval, and the first request after
    // it is routed by the map held while the new one is read (the cache refreshes in the background).
    expect((await http('GET', `/tenants/${tenant}/items`)).headers.get('x-cell-id')).toBe('cell-1');
    expect((await cellsCli('pin', tenant, 'cell-2')).code).toBe(0);
    const before = functionOutput.length;
    const put = await http('PUT', `/tenants/${tenant}/items/w`, widget);
    expect([put.status, put.headers.get('x-cell-id')]).toEqual([201, 'cell-2']);
    const logged = functionOutput.slice(before);
    expect(logged.some((line) => line.includes('cell refused the tenant as misdirected'))).toBe(true);
    // The old cell holds nothing of the tenant: the write never landed there.
    const cell1 = runtime.assembly.tables.find((t) => t.stackName === 'e2e-dev-cell-1')!;
    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: runtime.dynamoEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }),
    );
    try {
      const { Items } = await client.send(
        new QueryCommand({
          TableName: cell1.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `TENANT#${tenant}` },
        }),
      );
      expect(Items).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  it("lists a bucket's tenants from the cell's directory", async () => {
    const tenant = tenantIn('cell-3', 'listed');
    expect((await http('PUT', `/tenants/${tenant}/items/w`, widget)).status).toBe(201);
    const { bucket } = JSON.parse((await cellsCli('route', tenant, '--json')).stdout) as { bucket: number };
    const listed = await cellsCli('tenants', 'cell-3', `${bucket}-${bucket}`, '--json');
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([{ bucket, tenants: expect.arrayContaining([tenant]) }]);
    const refused = await cellsCli('tenants', 'cell-3', '99999');
    expect([refused.code, refused.stderr]).toEqual([
      2,
      'error: "99999" is no bucket: buckets are 0 to 16383; give one, or a range a-b with a ≤ b (npm run cells -- --help lists the commands and options)\n',
    ]);
  });

  it('drains into a saved plan, deactivates to 503 and activates again', async () => {
    expect((await cellsCli('drain', 'cell-3')).stdout.trim()).toBe('cell-3 is draining');
    const planFile = path.join(outdir, 'plan.json');
    const plan = await cellsCli('plan', '--out', planFile);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/: 5461 bucket moves/);
    expect(plan.stdout).toMatch(/^cell-3\s+draining\s+1\s+5461\s+0$/m);
    const saved = JSON.parse(readFileSync(planFile, 'utf8'));
    expect(saved.moveCount).toBe(5461);
    expect(saved.moves.map((m: any) => [m.from, m.to])).toEqual([
      ['cell-3', 'cell-1'],
      ['cell-3', 'cell-2'],
    ]);
    // A plan moves nothing by itself.
    expect(JSON.parse((await cellsCli('list', '--json')).stdout).cells[2].buckets).toBe(5461);

    const tenant = tenantIn('cell-3');
    await cellsCli('deactivate', 'cell-3');
    await eventually(async () => {
      const answer = await http('GET', `/tenants/${tenant}/items`);
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(answer.headers.get('x-cell-id')).toBe('cell-3');
    });
    await cellsCli('activate', 'cell-3');
    await eventually(async () => expect((await http('GET', `/tenants/${tenant}/items`)).status).toBe(200));
  });

  it("moves a tenant with its data, step by step, in the runtime's move workflow, resuming a move left half-way, and lists the move", async () => {
    const tenant = tenantIn('cell-1', 'moving');
    for (const itemId of ['a', 'b']) expect((await http('PUT', `/tenants/${tenant}/items/${itemId}`, widget)).status).toBe(201);
    // A move whose CLI and workflow died after the clone: its record says where it was, and nothing runs it.
    const connection = connectLocal(path.join(outdir, 'local-runtime.json'));
    try {
      const engine = new MoveEngine({ store: connection.store, moves: connection.moves, cellData: connection.cellData });
      const left = await engine.create({ kind: 'tenant', tenantId: tenant, to: 'cell-2' }, { by: 'e2e', graceSeconds: 0 });
      while ((await connection.moves.get(left.moveId))!.state === 'clone') await engine.step(left.moveId);
    } finally {
      connection.close();
    }
    // The listing says that nothing runs it, and how to go on.
    const listed = await cellsCli('moves');
    expect(listed.stdout).toMatch(new RegExp(`tenant ${tenant}\\s+cell-1\\s+cell-2\\s+catch up; stopped: no workflow runs it`));
    expect(listed.stdout).toContain(`npm run cells -- move tenant ${tenant} cell-2 --local`);
    const moved = await cellsCli('move', 'tenant', tenant, 'cell-2', '--grace', '0');
    expect([moved.code, moved.stderr]).toEqual([0, '']);
    expect(moved.stdout).toMatch(/^resuming move \S+ \(catch up\)$/m);
    // The operator's part ends at the flip; forgetting the source's copy (at once, with no grace) is the workflow's.
    for (const step of ['clone', 'catch up', 'fence', 'final catch up', 'verify', 'flip']) {
      expect(moved.stdout).toContain(`  ▸ ${step}`);
      expect(moved.stdout).toMatch(new RegExp(`  ✓ ${step}\\s+\\d`));
    }
    expect(moved.stdout).toMatch(/✓ catch up .* every record checked/);
    expect(moved.stdout).toMatch(/✓ verify .* \d+ records? written since the catch-up match(es)?, record by record/);
    expect(moved.stdout).toMatch(
      new RegExp(`^moved tenant ${tenant} from cell-1 to cell-2.*: map version \\d+, writes refused for [\\d.]+ m?s`, 'm'),
    );
    const read = await http('GET', `/tenants/${tenant}/items/b`);
    expect([read.status, read.headers.get('x-cell-id')]).toEqual([200, 'cell-2']);
    await eventually(async () => {
      const moves = JSON.parse((await cellsCli('moves', '--json')).stdout);
      expect(moves[0]).toMatchObject({ kind: 'tenant', subject: tenant, from: 'cell-1', to: 'cell-2', state: 'done', fencedMs: expect.any(Number) });
    });
    expect((await cellsCli('moves')).stdout).toMatch(new RegExp(`tenant ${tenant}\\s+cell-1\\s+cell-2\\s+done\\s+\\d+\\s+[\\d.]+ m?s`));
    const again = await cellsCli('move', 'tenant', tenant, 'cell-2');
    expect([again.code, again.stderr.trim()]).toEqual([1, `error: ${tenant} is already in cell-2`]);
    const abort = await cellsCli('move', 'tenant', tenant, 'cell-3', '--abort');
    expect([abort.code, abort.stderr.trim()]).toEqual([1, `error: no move of tenant ${tenant} to cell-3 is running`]);
  });

  it("returns once the move has flipped, saying when the workflow forgets the source's copy, lists the move as revertible, and reverts it", async () => {
    const tenant = tenantIn('cell-1', 'grace');
    expect((await http('PUT', `/tenants/${tenant}/items/a`, widget)).status).toBe(201);
    const moved = await cellsCli('move', 'tenant', tenant, 'cell-3', '--grace', '3600');
    expect([moved.code, moved.stderr]).toEqual([0, '']);
    expect(moved.stdout).not.toContain('✓ forget');
    expect(moved.stdout).toMatch(
      new RegExp(
        `^moved tenant ${tenant} from cell-1 to cell-3: map version \\d+, writes refused for [\\d.]+ m?s\\. cell-1 keeps its copy, kept current, until \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC \\(in (59 min|60 min|1 h)`,
        'm',
      ),
    );
    const moveId = /move --revert (\S+) takes it back$/m.exec(moved.stdout)![1]!;
    expect((await cellsCli('moves')).stdout).toMatch(
      new RegExp(`${moveId}\\s+tenant ${tenant}\\s+cell-1\\s+cell-3\\s+flipped; revertible until \\d{4}-`),
    );
    expect((await http('GET', `/tenants/${tenant}/items/a`)).headers.get('x-cell-id')).toBe('cell-3');
    // Written in cell-3 after the flip: it goes back with the tenant.
    expect((await http('PUT', `/tenants/${tenant}/items/b`, widget)).status).toBe(201);

    const reverted = await cellsCli('move', '--revert', moveId, '--grace', '0');
    expect([reverted.code, reverted.stderr]).toEqual([0, '']);
    expect(reverted.stdout).toMatch(new RegExp(`^move \\S+ reverts move ${moveId}: tenant ${tenant} from cell-3 back to cell-1`, 'm'));
    // With no grace period the workflow may have forgotten cell-3's copy by the time the CLI looks again.
    expect(reverted.stdout).toMatch(
      new RegExp(`^moved tenant ${tenant} from cell-3 to cell-1( in [\\d.]+ m?s)?: map version \\d+, writes refused for [\\d.]+ m?s`, 'm'),
    );
    for (const itemId of ['a', 'b']) {
      const read = await http('GET', `/tenants/${tenant}/items/${itemId}`);
      expect([read.status, read.headers.get('x-cell-id')]).toEqual([200, 'cell-1']);
    }
    const moves = JSON.parse((await cellsCli('moves', '--json')).stdout) as Array<{ moveId: string; state: string; revertOf?: string }>;
    const revert = moves.find((m) => m.revertOf === moveId)!;
    expect(moves.find((m) => m.moveId === moveId)).toMatchObject({ state: 'reverted', revertedBy: revert.moveId });
    const again = await cellsCli('move', '--revert', moveId);
    expect([again.code, again.stdout, again.stderr]).toEqual([1, '', `error: move ${moveId} was reverted already, by move ${revert.moveId}\n`]);
    const unknown = await cellsCli('move', '--revert', 'no-such-move');
    expect([unknown.code, unknown.stderr]).toEqual([1, 'error: no move "no-such-move"\n']);
  });

  it("applies a saved plan with a progress bar: its buckets, with their tenants' data, go to their new cell", async () => {
    const tenant = tenantIn('cell-3', 'applied');
    expect((await http('PUT', `/tenants/${tenant}/items/w`, widget)).status).toBe(201);
    const { bucket } = JSON.parse((await cellsCli('route', tenant, '--json')).stdout) as { bucket: number };
    const first = Math.max(0, bucket - 40);
    const planFile = path.join(outdir, 'small-plan.json');
    // A plan as cells plan saves it, cut down to the buckets around the tenant's (a whole drain is tested in process).
    const version = JSON.parse((await cellsCli('list', '--json')).stdout).version;
    writeFileSync(
      planFile,
      JSON.stringify({ basedOnVersion: version, moves: [{ from: 'cell-3', to: 'cell-1', count: bucket - first + 1, ranges: [[first, bucket]] }] }),
    );
    const applied = await cellsCli('apply', planFile, '--grace', '0');
    expect([applied.code, applied.stderr]).toEqual([0, '']);
    expect(applied.stdout).toMatch(new RegExp(`\\[#{24}\\] ${bucket - first + 1}/${bucket - first + 1} buckets · 0 running · \\d+ records`));
    expect(applied.stdout).toContain('done: every bucket of the plan is in its new cell');
    const read = await http('GET', `/tenants/${tenant}/items/w`);
    expect([read.status, read.headers.get('x-cell-id')]).toEqual([200, 'cell-1']);
    expect(JSON.parse((await cellsCli('tenants', 'cell-3', `${bucket}`, '--json')).stdout)).toEqual([{ bucket, tenants: [] }]);
    // Done is done: applying it again starts nothing.
    const again = await cellsCli('apply', planFile);
    expect(again.stdout).toContain('done: every bucket of the plan is in its new cell');
  });

  it('says what is wrong in one line and exits non-zero', async () => {
    const unknown = await cellsCli('drain', 'cell-9');
    expect([unknown.code, unknown.stderr.trim()]).toEqual([1, 'error: no cell "cell-9" is registered']);
    const usage = await cellsCli('pin', 'only-one-argument');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe('error: pin takes <tenantId> <cellId> (npm run cells -- --help lists the commands and options)\n');
    // Bad arguments are refused before the runtime is reached (test/control-plane/cli.test.ts has the rest).
    const badBuckets = await cellsCli('move', 'bucket', 'x-y', 'cell-2');
    expect([badBuckets.code, badBuckets.stderr.split('\n')[0]]).toEqual([
      2,
      'error: "x-y" is no bucket: buckets are 0 to 16383; give one, or a range a-b with a ≤ b (npm run cells -- --help lists the commands and options)',
    ]);
    // A plan is checked against the registry before any of it runs.
    const unregistered = path.join(outdir, 'unregistered-plan.json');
    writeFileSync(unregistered, JSON.stringify({ basedOnVersion: 1, moves: [{ from: 'cell-1', to: 'cell-9', count: 1, ranges: [[7, 7]] }] }));
    const badCell = await cellsCli('apply', unregistered);
    expect([badCell.code, badCell.stdout]).toEqual([1, '']);
    expect(badCell.stderr).toMatch(/^error: .*unregistered-plan\.json: moves\[0\]\.to names "cell-9", which is no registered cell \(cells: .*\)\n$/);
    const garbage = path.join(outdir, 'garbage-plan.json');
    writeFileSync(garbage, 'not json {');
    const badPlan = await cellsCli('apply', garbage);
    expect(badPlan.code).toBe(1);
    expect(badPlan.stderr.trim()).toMatch(/^error: .*garbage-plan\.json is not a plan that cells plan saved: /);
    expect(badPlan.stderr.trim().split('\n')).toHaveLength(1);
    writeFileSync(garbage, JSON.stringify({ basedOnVersion: 1, moves: [{ from: 'cell-1', to: 'cell-2', count: 1, ranges: [[5]] }] }));
    expect((await cellsCli('apply', garbage)).stderr).toMatch(/^error: .* is not a plan that cells plan saved/);
    const noRuntime = spawnSync(
      process.execPath,
      ['--import', 'tsx', fromRoot('tools', 'cells', 'cli.ts'), 'list', '--local', '--local-state', path.join(outdir, 'none.json')],
      {
        cwd: fromRoot(),
        encoding: 'utf8',
      },
    );
    expect([noRuntime.status, noRuntime.stderr.trim()]).toEqual([
      1,
      `error: no local runtime is running (no ${path.relative(fromRoot(), path.join(outdir, 'none.json'))}): start one with npm start`,
    ]);
  });
});

// Last in the file: by now every suite above has sent its requests with its tokens.
describe('npm start: no token in any log line', () => {
  it('logs no token of the run, nor any token signature, in any function output', () => {
    expect(tokens.size).toBeGreaterThan(3);
    expect(functionOutput.length).toBeGreaterThan(50);
    for (const token of tokens.values()) {
      const signature = token.split('.')[2]!;
      expect(functionOutput.filter((line) => line.includes(signature))).toEqual([]);
    }
  });

  it("tags every log line and metric of a cell's functions with its cellId, and each routed request's with the cell it went to", () => {
    const lines = functionOutput.flatMap((line) => {
      const match = /^\[([^\]]+)\] (\{.*\})$/.exec(line);
      return match ? [{ fn: match[1]!, record: JSON.parse(match[2]!) as Record<string, any> }] : [];
    });
    const dimensionsOf = (record: Record<string, any>): string[] =>
      record._aws.CloudWatchMetrics.flatMap((m: { Dimensions: string[][] }) => m.Dimensions.flat());
    const metricsOf = (record: Record<string, any>): string[] =>
      record._aws.CloudWatchMetrics.flatMap((m: { Metrics: { Name: string }[] }) => m.Metrics.map((x) => x.Name));
    const ofCells = lines.filter(({ fn }) => /-cell-\d+-/.test(fn));
    // Every cell function that ran said something; what each said names its own cell.
    expect(new Set(ofCells.map(({ fn }) => fn.replace(/^e2e-dev-cell-\d+-/, '').replace(/[0-9A-F]{8}$/, '')))).toEqual(
      new Set(['api', 'Publisher', 'Payment']),
    );
    expect(ofCells.filter(({ record }) => record._aws).length).toBeGreaterThan(0);
    expect(ofCells.filter(({ record }) => !record._aws).length).toBeGreaterThan(0);
    for (const { fn, record } of ofCells) {
      const cellId = /-(cell-\d+)-/.exec(fn)![1];
      expect({ fn, cellId: record.cellId }).toEqual({ fn, cellId });
      if (record._aws) expect({ fn, dimensions: dimensionsOf(record) }).toEqual({ fn, dimensions: expect.arrayContaining(['cellId']) });
    }
    // The router: each request it routed is counted and logged under the cell that answered it.
    const routed = lines.filter(
      ({ fn, record }) => /-control-plane-Router[0-9A-F]{8}$/.test(fn) && record._aws && metricsOf(record).includes('Requests'),
    );
    expect(routed.length).toBeGreaterThan(10);
    for (const { record } of routed) {
      expect(dimensionsOf(record)).toContain('cellId');
      expect(cells).toContain(record.cellId);
    }
  });
});
