import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cellFor, evenSplit } from '../../functions/router/routing.ts';
import { startLocalRuntime, type LocalRuntime } from '../../local/runtime.ts';
import { isAlive } from '../support/processes.ts';

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
    outdir,
    dynamoEndpoint: inject('dynamoEndpoint'),
    functionOutput: (line) => functionOutput.push(line),
  });
});
afterAll(async () => {
  const pids = runtime?.pids() ?? [];
  await runtime?.stop();
  rmSync(outdir, { recursive: true, force: true });
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
});

const cells = ['cell-1', 'cell-2', 'cell-3'];
const map = evenSplit(cells);
const widget = { title: 'Widget', price: { amount: 1299, currency: 'EUR' }, stock: 10 };

async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
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
function tenantIn(cellId: string): string {
  for (let n = 0; ; n += 1) if (cellFor(map, `tenant-${n}`) === cellId) return `tenant-${n}`;
}

describe('npm start: the items API end to end', () => {
  it('answers /health from the router with every cell', async () => {
    const health = await http('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: 'ok', cells });
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
    expect([...first.json.items, ...rest.json.items].map((i: { itemId: string }) => i.itemId).sort()).toEqual([
      'a',
      'b',
      'c',
      'widget-1',
    ]);

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
    const cellTables = runtime.assembly.tables.map((table) => table.tableName);
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
    const api = runtime.assembly.functions.find((fn) => fn.functionName === 'item-master-dev-cell-1-api');
    expect(api).toBeDefined();
    expect(functionOutput.some((line) => line.startsWith('[item-master-dev-cell-'))).toBe(true);
  });
});

describe('reloading (npm run dev)', () => {
  it('re-synthesizes and reloads only the functions that changed, without a restart', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'item-master-reload-'));
    const small = await startLocalRuntime({
      port: 0,
      outdir: dir,
      dynamoEndpoint: inject('dynamoEndpoint'),
      context: { cells: ['cell-1'] },
      functionOutput: () => undefined,
    });
    try {
      expect(((await fetch(`${small.url}/health`).then((r) => r.json())) as { cells: string[] }).cells).toEqual(['cell-1']);
      expect(await small.reload()).toEqual([]);
      const changed = await small.reload({ cells: ['cell-1', 'cell-2'] });
      expect(changed.sort()).toEqual(['item-master-dev-cell-2-api', small.assembly.frontDoor.functionName].sort());
      expect(((await fetch(`${small.url}/health`).then((r) => r.json())) as { cells: string[] }).cells).toEqual(['cell-1', 'cell-2']);
      const twoCells = evenSplit(['cell-1', 'cell-2']);
      const tenant = Array.from({ length: 50 }, (_, n) => `t-${n}`).find((t) => cellFor(twoCells, t) === 'cell-2')!;
      const put = await fetch(`${small.url}/tenants/${tenant}/items/x`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(widget),
      });
      expect(put.status).toBe(201);
      expect(put.headers.get('x-cell-id')).toBe('cell-2');
    } finally {
      await small.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
