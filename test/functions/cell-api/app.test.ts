import { createObservability } from '@item-master/shared';
import type { ALBResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Router } from '@aws-lambda-powertools/event-handler/http';
import { createApp, MAX_BODY_BYTES, registerRoutes, tableFault } from '../../../functions/cell-api/app.ts';
import { cellEntities } from '../../../functions/cell-api/entities.ts';
import { allowedMethods, HTTP_METHODS, ROUTES, type Route } from '../../../layers/shared/src/contracts/routes.ts';
import { DATA_PLANE, sdkClientConfig } from '../../../layers/shared/src/sdk-timeouts.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../../local/dynamodb-local.ts';
import { startHangingServer } from '../../support/hanging-server.ts';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { OrderStore, orderIdFor, type ExecutionStarter } from '../../../functions/cell-api/order-store.ts';
import type { OrderWorkflowInput } from '../../../functions/cell-api/saga-input.ts';
import { albEvent, lambdaContext } from '../../support/alb.ts';
import { createCellTable } from '../../support/tables.ts';

const tenant = 'tenant-a';
const widget = {
  title: 'Widget',
  description: 'A small widget',
  price: { amount: 1299, currency: 'EUR' },
  stock: 10,
  attributes: { colour: 'red' },
};

let table: Awaited<ReturnType<typeof createCellTable>>;
let app: ReturnType<typeof createApp>;

/** Records the executions the API starts; `failNext` makes the next start fail. */
class RecordingStarter implements ExecutionStarter {
  readonly started: Array<{ name: string; input: OrderWorkflowInput }> = [];
  failNext = false;
  async start(name: string, input: OrderWorkflowInput): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('Step Functions is unavailable');
    }
    this.started.push({ name, input });
  }
}
const workflow = new RecordingStarter();

const observability = createObservability('cell-test');

beforeAll(async () => {
  table = await createCellTable(inject('dynamoEndpoint'));
  app = createApp(
    { entities: cellEntities(table.doc, table.tableName), orders: new OrderStore(table.doc, table.tableName, workflow) },
    observability,
  );
});
afterAll(async () => {
  await table?.drop();
});

async function call(
  method: string,
  path: string,
  options: Parameters<typeof albEvent>[2] = {},
): Promise<{ status: number; body: any; headers: Record<string, string> }> {
  const result = (await app.resolve(albEvent(method, path, options), lambdaContext)) as ALBResult;
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  for (const [k, vs] of Object.entries(result.multiValueHeaders ?? {})) headers[k.toLowerCase()] = vs.join(', ');
  return { status: result.statusCode, body: result.body ? JSON.parse(result.body) : undefined, headers };
}

const itemPath = (itemId: string, tenantId = tenant) => `/tenants/${tenantId}/items/${itemId}`;

describe('PUT /tenants/{tenantId}/items/{itemId}', () => {
  it('creates (201) and then replaces (200), bumping the version', async () => {
    const created = await call('PUT', itemPath('put-1'), { body: widget });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenantId: tenant, itemId: 'put-1', ...widget, version: 1 });
    expect(created.body.createdAt).toBe(created.body.updatedAt);
    expect(created.headers.etag).toBe('"1"');

    const { description: _removed, ...withoutDescription } = widget;
    const replaced = await call('PUT', itemPath('put-1'), { body: { ...withoutDescription, title: 'Widget 2' } });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ title: 'Widget 2', version: 2, createdAt: created.body.createdAt });
    expect(replaced.body).not.toHaveProperty('description');
  });

  it('accepts a base64-encoded body', async () => {
    const result = await call('PUT', itemPath('put-b64'), { body: widget, base64: true });
    expect(result.status).toBe(201);
    expect(result.body.title).toBe('Widget');
  });

  it('replaces only at the version in If-Match when one is sent', async () => {
    await call('PUT', itemPath('put-2'), { body: widget });
    const stale = await call('PUT', itemPath('put-2'), { body: widget, headers: { 'if-match': '"7"' } });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: 'version_conflict', details: { expected: 7, actual: 1 } });
    const fresh = await call('PUT', itemPath('put-2'), { body: widget, headers: { 'if-match': '"1"' } });
    expect(fresh.status).toBe(200);
  });

  it.each([
    ['bad JSON', '{"title":', 400, 'invalid_json'],
    ['an empty body', '', 400, 'bad_request'],
    ['a missing field', { ...widget, title: undefined }, 400, 'validation_failed'],
    ['a wrong type', { ...widget, stock: '10' }, 400, 'validation_failed'],
    ['negative stock', { ...widget, stock: -1 }, 400, 'validation_failed'],
    ['a fractional price', { ...widget, price: { amount: 12.5, currency: 'EUR' } }, 400, 'validation_failed'],
    ['an unknown currency', { ...widget, price: { amount: 1, currency: 'XYZ' } }, 400, 'validation_failed'],
    ['an unknown field', { ...widget, colour: 'red' }, 400, 'validation_failed'],
    ['a read-only field', { ...widget, version: 3 }, 400, 'validation_failed'],
    ['a non-string attribute', { ...widget, attributes: { size: 3 } }, 400, 'validation_failed'],
    ['a JSON array', [widget], 400, 'validation_failed'],
  ])('rejects %s and stores nothing', async (_case, body, status, code) => {
    const result = await call('PUT', itemPath('rejected'), { body });
    expect(result.status).toBe(status);
    expect(result.body.error.code).toBe(code);
    expect(typeof result.body.error.message).toBe('string');
    expect((await call('GET', itemPath('rejected'))).status).toBe(404);
  });

  it('names the offending fields in details', async () => {
    const result = await call('PUT', itemPath('rejected'), { body: { ...widget, stock: 'many', extra: 1 } });
    const paths = result.body.error.details.map((d: { path: string }) => d.path);
    expect(paths).toContain('body.stock');
    expect(result.body.error.details.some((d: { message: string }) => d.message.includes('extra'))).toBe(true);
  });

  it('rejects a body over 256 KB with 413', async () => {
    const body = { ...widget, description: 'x'.repeat(MAX_BODY_BYTES) };
    const result = await call('PUT', itemPath('too-big'), { body });
    expect(result.status).toBe(413);
    expect(result.body.error.code).toBe('payload_too_large');
  });

  it.each([
    ['an item id with a bad character', itemPath('bad$id')],
    ['an item id over 128 characters', itemPath('i'.repeat(129))],
    ['a tenant id with a bad character', itemPath('ok', 'bad%20tenant')],
  ])('rejects %s with 400', async (_case, path) => {
    const result = await call('PUT', path, { body: widget });
    expect(result.status).toBe(400);
    expect(result.body.error.code).toBe('validation_failed');
  });

  it('rejects a broken %-escape in the path with 400, not 500', async () => {
    const result = await call('GET', '/tenants/t/items/%E0%A4%A');
    expect(result.status).toBe(400);
  });

  it('rejects a malformed If-Match with 400', async () => {
    const result = await call('PUT', itemPath('put-3'), { body: widget, headers: { 'if-match': 'latest' } });
    expect(result.status).toBe(400);
  });
});

describe('HEAD', () => {
  it('answers what GET answers, without the body, on every path with a GET', async () => {
    await call('PUT', itemPath('head-1'), { body: widget });
    const head = (await app.resolve(albEvent('HEAD', itemPath('head-1')), lambdaContext)) as ALBResult;
    const get = await call('GET', itemPath('head-1'));
    expect(head.statusCode).toBe(200);
    expect(head.body ?? '').toBe('');
    expect(head.headers?.etag ?? head.multiValueHeaders?.etag?.[0]).toBe(get.headers.etag);
    expect(((await app.resolve(albEvent('HEAD', itemPath('no-such')), lambdaContext)) as ALBResult).statusCode).toBe(404);
    expect(((await app.resolve(albEvent('HEAD', `/tenants/${tenant}/items`), lambdaContext)) as ALBResult).statusCode).toBe(200);
    expect(((await app.resolve(albEvent('HEAD', `/tenants/${tenant}/orders`), lambdaContext)) as ALBResult).statusCode).toBe(405);
  });
});

describe('GET /tenants/{tenantId}/items/{itemId}', () => {
  it('returns the item with its ETag, or 404', async () => {
    await call('PUT', itemPath('get-1'), { body: widget });
    const found = await call('GET', itemPath('get-1'));
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ itemId: 'get-1', version: 1 });
    expect(found.body).not.toHaveProperty('pk');
    expect(found.headers.etag).toBe('"1"');
    const missing = await call('GET', itemPath('nope'));
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('keeps tenants apart: another tenant does not see the item', async () => {
    await call('PUT', itemPath('private'), { body: widget });
    expect((await call('GET', itemPath('private', 'tenant-b'))).status).toBe(404);
  });
});

describe('PATCH /tenants/{tenantId}/items/{itemId}', () => {
  it('needs If-Match: 428 without it, and changes nothing', async () => {
    await call('PUT', itemPath('patch-1'), { body: widget });
    const result = await call('PATCH', itemPath('patch-1'), { body: { stock: 3 } });
    expect(result.status).toBe(428);
    expect(result.body.error.code).toBe('precondition_required');
    expect((await call('GET', itemPath('patch-1'))).body.stock).toBe(10);
  });

  it('updates the given fields at the current version', async () => {
    await call('PUT', itemPath('patch-2'), { body: widget });
    const result = await call('PATCH', itemPath('patch-2'), {
      body: { stock: 4, description: null, attributes: { size: 'L' } },
      headers: { 'if-match': '"1"' },
    });
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ title: 'Widget', stock: 4, attributes: { size: 'L' }, version: 2 });
    expect(result.body).not.toHaveProperty('description');
    expect(result.headers.etag).toBe('"2"');
  });

  it('answers 409 for a stale version and 404 for a missing item', async () => {
    await call('PUT', itemPath('patch-3'), { body: widget });
    const stale = await call('PATCH', itemPath('patch-3'), { body: { stock: 1 }, headers: { 'if-match': '0' } });
    expect(stale.status).toBe(409);
    expect(stale.headers.etag).toBe('"1"');
    const missing = await call('PATCH', itemPath('patch-none'), { body: { stock: 1 }, headers: { 'if-match': '1' } });
    expect(missing.status).toBe(404);
  });

  it('rejects an empty patch and unknown fields', async () => {
    await call('PUT', itemPath('patch-4'), { body: widget });
    for (const body of [{}, { itemId: 'other' }, { stock: -5 }]) {
      const result = await call('PATCH', itemPath('patch-4'), { body, headers: { 'if-match': '1' } });
      expect(result.status).toBe(400);
    }
    expect((await call('GET', itemPath('patch-4'))).body.version).toBe(1);
  });

  it('lets exactly one of many concurrent PATCHes at the same version win, losing nothing', async () => {
    await call('PUT', itemPath('race'), { body: { ...widget, stock: 0 } });
    const writers = 20;
    const results = await Promise.all(
      Array.from({ length: writers }, (_, n) => call('PATCH', itemPath('race'), { body: { stock: n + 1 }, headers: { 'if-match': '"1"' } })),
    );
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(writers - 1);
    const stored = await call('GET', itemPath('race'));
    expect(stored.body.version).toBe(2);
    expect(stored.body.stock).toBe(winners[0]!.body.stock);
  });
});

describe('DELETE /tenants/{tenantId}/items/{itemId}', () => {
  it('answers 204, then 404', async () => {
    await call('PUT', itemPath('del-1'), { body: widget });
    const deleted = await call('DELETE', itemPath('del-1'));
    expect(deleted.status).toBe(204);
    expect((await call('GET', itemPath('del-1'))).status).toBe(404);
    expect((await call('DELETE', itemPath('del-1'))).status).toBe(404);
  });

  it('deletes only at the version in If-Match when one is sent', async () => {
    await call('PUT', itemPath('del-2'), { body: widget });
    expect((await call('DELETE', itemPath('del-2'), { headers: { 'if-match': '5' } })).status).toBe(409);
    expect((await call('DELETE', itemPath('del-2'), { headers: { 'if-match': '1' } })).status).toBe(204);
  });
});

describe('versions across delete and re-create', () => {
  it('never repeat for a key: a writer holding a version of the deleted item cannot touch the new one', async () => {
    const first = await call('PUT', itemPath('aba'), { body: widget });
    expect(first.headers.etag).toBe('"1"');
    expect((await call('DELETE', itemPath('aba'))).status).toBe(204);
    expect((await call('PATCH', itemPath('aba'), { body: { stock: 1 }, headers: { 'if-match': '1' } })).status).toBe(404);
    expect((await call('DELETE', itemPath('aba'), { headers: { 'if-match': '2' } })).status).toBe(404);
    // The tombstone is at version 2: a conditional write at that version does not bring the item back.
    expect((await call('PATCH', itemPath('aba'), { body: { stock: 1 }, headers: { 'if-match': '2' } })).status).toBe(404);
    expect((await call('PUT', itemPath('aba'), { body: widget, headers: { 'if-match': '2' } })).status).toBe(404);
    const again = await call('PUT', itemPath('aba'), { body: { ...widget, title: 'New' } });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ title: 'New', version: 3 });
    expect(again.headers.etag).toBe('"3"');
    expect(again.body).not.toHaveProperty('incarnation');
    expect(again.body).not.toHaveProperty('deletedAt');
    for (const [method, body] of [
      ['PUT', widget],
      ['PATCH', { stock: 1 }],
      ['DELETE', undefined],
    ] as const) {
      const stale = await call(method, itemPath('aba'), { body, headers: { 'if-match': '"1"' } });
      expect(stale.status).toBe(409);
      expect(stale.body.error.details).toEqual({ expected: 1, actual: 3 });
    }
    expect((await call('GET', itemPath('aba'))).body).toMatchObject({ title: 'New', version: 3 });
    // Created anew: createdAt is the new item's.
    expect(again.body.createdAt >= first.body.updatedAt).toBe(true);
  });

  it('answers 200, not 201, for a replace of a live item, and 201 for every creation', async () => {
    expect((await call('PUT', itemPath('created-flag'), { body: widget })).status).toBe(201);
    expect((await call('PUT', itemPath('created-flag'), { body: widget })).status).toBe(200);
    await call('DELETE', itemPath('created-flag'));
    expect((await call('PUT', itemPath('created-flag'), { body: widget })).status).toBe(201);
  });
});

describe('map keys that are special to JavaScript objects', () => {
  const reserved = Object.getOwnPropertyNames(Object.prototype);

  it.each(reserved)('refuses the attribute key %s with a 400 that names it, and stores nothing', async (key) => {
    const itemId = `special-${key.replaceAll('_', 'u')}`;
    const body = `{"title":"T","price":{"amount":1,"currency":"EUR"},"stock":1,"attributes":{${JSON.stringify(key)}:"v","ok":"w"}}`;
    const put = await call('PUT', itemPath(itemId), { body, headers: { 'content-type': 'application/json' } });
    expect(put.status).toBe(400);
    expect(put.body.error.code).toBe('validation_failed');
    expect(put.body.error.details).toContainEqual({ path: 'body.attributes', message: expect.stringContaining(JSON.stringify(key)) });
    expect((await call('GET', itemPath(itemId))).status).toBe(404);
    await call('PUT', itemPath(itemId), { body: widget });
    const patch = await call('PATCH', itemPath(itemId), {
      body: `{"attributes":{${JSON.stringify(key)}:"v"}}`,
      headers: { 'if-match': '1', 'content-type': 'application/json' },
    });
    expect(patch.status).toBe(400);
    expect((await call('GET', itemPath(itemId))).body.attributes).toEqual(widget.attributes);
  });

  it('round-trips keys that only look like them', async () => {
    const attributes = { Constructor: 'a', proto: 'b', __proto: 'c', 'to-string': 'd', 'constructor ': 'e', prototype: 'f' };
    expect((await call('PUT', itemPath('lookalikes'), { body: { ...widget, attributes } })).status).toBe(201);
    expect((await call('GET', itemPath('lookalikes'))).body.attributes).toEqual(attributes);
  });
});

describe('GET /tenants/{tenantId}/items', () => {
  const listTenant = 'tenant-list';

  it('pages through every item exactly once with limit and cursor', async () => {
    const ids = Array.from({ length: 7 }, (_, n) => `item-${n}`);
    for (const itemId of ids) await call('PUT', itemPath(itemId, listTenant), { body: widget });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const query = cursor ? `?limit=3&cursor=${encodeURIComponent(cursor)}` : '?limit=3';
      const page = await call('GET', `/tenants/${listTenant}/items${query}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.items.map((item: { itemId: string }) => item.itemId));
      cursor = page.body.cursor;
      pages += 1;
    } while (cursor);
    expect(seen.sort()).toEqual(ids);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('defaults to 25 items a page', async () => {
    const tenantId = 'tenant-many';
    for (let n = 0; n < 30; n += 1) await call('PUT', itemPath(`i-${String(n).padStart(2, '0')}`, tenantId), { body: widget });
    const page = await call('GET', `/tenants/${tenantId}/items`);
    expect(page.body.items).toHaveLength(25);
    expect(page.body.cursor).toEqual(expect.any(String));
  });

  it('skips deleted items, and pages past many of them with a cursor', async () => {
    const tenantId = 'tenant-tombstones';
    for (let n = 0; n < 22; n += 1) await call('PUT', itemPath(`d-${String(n).padStart(2, '0')}`, tenantId), { body: widget });
    for (let n = 0; n < 20; n += 1) await call('DELETE', itemPath(`d-${String(n).padStart(2, '0')}`, tenantId));
    let cursor: string | undefined;
    const pages: string[][] = [];
    do {
      const page = await call('GET', `/tenants/${tenantId}/items?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      pages.push(page.body.items.map((item: { itemId: string }) => item.itemId));
      cursor = page.body.cursor;
    } while (cursor);
    // Ten records read per record asked for, then a short page: two empty pages (ten deleted items each) before d-20, and a last one that finds no more.
    expect(pages).toEqual([[], [], ['d-20'], ['d-21'], []]);
  });

  it('asks the table only for what the page still lacks when deleted items make it read again', async () => {
    const tenantId = 'tenant-gap';
    for (let n = 0; n < 6; n += 1) await call('PUT', itemPath(`g-${n}`, tenantId), { body: widget });
    await call('DELETE', itemPath('g-1', tenantId));
    const first = await call('GET', `/tenants/${tenantId}/items?limit=3`);
    expect(first.body.items.map((item: { itemId: string }) => item.itemId)).toEqual(['g-0', 'g-2', 'g-3']);
    const rest = await call('GET', `/tenants/${tenantId}/items?limit=3&cursor=${encodeURIComponent(first.body.cursor)}`);
    expect(rest.body.items.map((item: { itemId: string }) => item.itemId)).toEqual(['g-4', 'g-5']);
  });

  it("cuts a page by size, so that no answer passes the ALB's 1 MB, and loses no item", async () => {
    const tenantId = 'tenant-large';
    // Quotes grow twice on the way out: escaped in the JSON body, and again inside the Lambda response.
    const attributes = Object.fromEntries(Array.from({ length: 100 }, (_, n) => [`a${n}`, '"'.repeat(1024)]));
    const ids = Array.from({ length: 9 }, (_, n) => `big-${n}`);
    for (const itemId of ids) expect((await call('PUT', itemPath(itemId, tenantId), { body: { ...widget, attributes } })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const event = albEvent('GET', `/tenants/${tenantId}/items${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
      const result = (await app.resolve(event, lambdaContext)) as ALBResult;
      expect(result.statusCode).toBe(200);
      expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThan(1024 * 1024);
      const page = JSON.parse(result.body!);
      expect(page.items.length).toBeGreaterThan(0);
      seen.push(...page.items.map((item: { itemId: string }) => item.itemId));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(ids);
  });

  it('returns an empty page for a tenant with no items', async () => {
    const page = await call('GET', '/tenants/nobody/items');
    expect(page).toMatchObject({ status: 200, body: { items: [] } });
    expect(page.body).not.toHaveProperty('cursor');
  });

  it.each(['limit=0', 'limit=101', 'limit=abc', 'limit=2.5', 'cursor=not-a-cursor', 'cursor=e30'])('rejects %s with 400', async (query) => {
    const result = await call('GET', `/tenants/${listTenant}/items?${query}`);
    expect(result.status).toBe(400);
    expect(result.body.error.code).toBe('validation_failed');
  });
});

describe('routing errors', () => {
  it('answers 404 for an unknown route', async () => {
    for (const path of ['/tenants/t/things', '/tenants/t/items/i/extra', '/']) {
      const result = await call('GET', path);
      expect(result.status).toBe(404);
      expect(result.body.error.code).toBe('not_found');
    }
  });

  it('answers 405 with Allow for a wrong method', async () => {
    const onItem = await call('POST', itemPath('x'), { body: widget });
    expect(onItem.status).toBe(405);
    expect(onItem.body.error.code).toBe('method_not_allowed');
    expect(onItem.headers.allow).toBe('GET, HEAD, PUT, PATCH, DELETE, OPTIONS');
    const onList = await call('DELETE', '/tenants/t/items');
    expect(onList.status).toBe(405);
    expect(onList.headers.allow).toBe('GET, HEAD, OPTIONS');
  });
});

describe('orders', () => {
  const ordersPath = `/tenants/${tenant}/orders`;
  const order = {
    lines: [
      { itemId: 'o-a', quantity: 2 },
      { itemId: 'o-b', quantity: 1 },
      { itemId: 'o-a', quantity: 1 },
    ],
    customerId: 'cust-1',
    payment: { token: 'tok_ok' },
  };
  /** Writes what the workflow would have written to the order. */
  const advance = (orderId: string, attributes: Record<string, unknown>) => {
    const names = Object.keys(attributes);
    return table.doc.send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { pk: `TENANT#${tenant}`, sk: `ORDER#${orderId}` },
        UpdateExpression: `SET ${names.map((_, i) => `#a${i} = :a${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(names.map((name, i) => [`#a${i}`, name])),
        ExpressionAttributeValues: Object.fromEntries(names.map((name, i) => [`:a${i}`, attributes[name]])),
      }),
    );
  };
  const place = (key: string | undefined, body: unknown = order) =>
    call('POST', ordersPath, { body, headers: key === undefined ? {} : { 'idempotency-key': key } });

  it('counts an order it took once: a replay of its Idempotency-Key is not a new order', async () => {
    const counted = vi.spyOn(observability.metrics, 'addMetric');
    try {
      expect((await place('key-counted')).status).toBe(202);
      expect((await place('key-counted')).headers['idempotent-replayed']).toBe('true');
      expect(counted.mock.calls.filter(([name]) => name === 'OrdersPlaced')).toHaveLength(1);
    } finally {
      counted.mockRestore();
    }
  });

  it('records the order as PENDING, starts its workflow and answers 202 with where to read it', async () => {
    const before = workflow.started.length;
    const placed = await place('key-1');
    expect(placed.status).toBe(202);
    expect(placed.body).toEqual({ orderId: expect.stringMatching(/^[0-9a-f]{32}$/), status: 'PENDING' });
    expect(placed.headers.location).toBe(`${ordersPath}/${placed.body.orderId}`);
    expect(placed.headers['idempotent-replayed']).toBeUndefined();

    const [started] = workflow.started.slice(before);
    expect(workflow.started.length).toBe(before + 1);
    expect(started).toMatchObject({
      name: placed.body.orderId,
      input: { tenantId: tenant, orderId: placed.body.orderId, payment: { token: 'tok_ok' } },
    });
    expect(started!.input.reservation.TransactItems).toHaveLength(2);

    const read = await call('GET', placed.headers.location!);
    expect(read.status).toBe(200);
    expect(read.body).toEqual({
      tenantId: tenant,
      orderId: placed.body.orderId,
      customerId: 'cust-1',
      lines: [
        { itemId: 'o-a', quantity: 3 },
        { itemId: 'o-b', quantity: 1 },
      ],
      status: 'PENDING',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    // The card token stays out of the record.
    expect(JSON.stringify(read.body)).not.toContain('tok_ok');
  });

  it('answers a repeated key with the same order and starts nothing new', async () => {
    const first = await place('key-repeat');
    const count = workflow.started.length;
    // The workflow has moved the order on: the repeat reports where it is.
    await advance(first.body.orderId, { status: 'CONFIRMED' });
    const again = await place('key-repeat');
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ orderId: first.body.orderId, status: 'CONFIRMED' });
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(workflow.started.length).toBe(count);
  });

  it('gives the same key of another tenant another order', async () => {
    const ours = await place('shared-key');
    const theirs = await call('POST', '/tenants/tenant-b/orders', { body: order, headers: { 'idempotency-key': 'shared-key' } });
    expect(theirs.body.orderId).not.toBe(ours.body.orderId);
  });

  it('refuses a key reused for a different request (422) and starts nothing', async () => {
    const first = await place('key-reused');
    const count = workflow.started.length;
    const other = await place('key-reused', { ...order, customerId: 'cust-2' });
    expect(other.status).toBe(422);
    expect(other.body.error).toEqual({
      code: 'idempotency_key_reused',
      message: 'this Idempotency-Key was already used for a different request',
      details: { orderId: first.body.orderId },
    });
    expect(workflow.started.length).toBe(count);
  });

  it('keeps an order whose workflow could not start, and starts it when the request is repeated', async () => {
    const count = workflow.started.length;
    workflow.failNext = true;
    const failed = await place('key-retry');
    expect(failed.status).toBe(503);
    expect(failed.headers['retry-after']).toBe('1');
    expect(failed.body.error).toEqual({
      code: 'service_unavailable',
      message: expect.stringMatching(
        /^order \S+ is recorded but its workflow could not be started: repeat the request with the same Idempotency-Key$/,
      ),
    });
    expect(workflow.started.length).toBe(count);

    const retried = await place('key-retry');
    expect(retried.status).toBe(202);
    expect(retried.body.status).toBe('PENDING');
    expect(workflow.started.length).toBe(count + 1);
    expect(workflow.started.at(-1)!.name).toBe(retried.body.orderId);
  });

  const longLines = Array.from({ length: 101 }, (_, i) => ({ itemId: `i${i}`, quantity: 1 }));
  it.each([
    ['no Idempotency-Key', undefined, order, 'headers.idempotency-key'],
    ['an empty Idempotency-Key', '', order, 'headers.idempotency-key'],
    ['a key with spaces', 'a key', order, 'headers.idempotency-key'],
    ['no lines', 'k', { ...order, lines: [] }, 'body.lines'],
    ['101 lines', 'k', { ...order, lines: longLines }, 'body.lines'],
    ['quantity 0', 'k', { ...order, lines: [{ itemId: 'a', quantity: 0 }] }, 'body.lines.0.quantity'],
    ['a fractional quantity', 'k', { ...order, lines: [{ itemId: 'a', quantity: 1.5 }] }, 'body.lines.0.quantity'],
    ['a bad item id', 'k', { ...order, lines: [{ itemId: 'a/b', quantity: 1 }] }, 'body.lines.0.itemId'],
    ['no customer', 'k', { lines: order.lines, payment: order.payment }, 'body.customerId'],
    ['no payment token', 'k', { ...order, payment: {} }, 'body.payment.token'],
    ['an unknown field', 'k', { ...order, coupon: 'FREE' }, 'body'],
  ])('refuses %s with 400, records nothing and starts nothing', async (_case, key, body, path) => {
    const count = workflow.started.length;
    const result = await place(key as string | undefined, body);
    expect(result.status).toBe(400);
    expect(result.body.error.code).toBe('validation_failed');
    expect(result.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    expect(workflow.started.length).toBe(count);
    if (key === 'k') {
      const { Item } = await table.doc.send(
        new GetCommand({ TableName: table.tableName, Key: { pk: `TENANT#${tenant}`, sk: `ORDER#${orderIdFor(tenant, 'k')}` } }),
      );
      expect(Item).toBeUndefined();
    }
  });

  it('refuses a body that is not JSON (400)', async () => {
    const result = await place('k-json', '{"lines": [');
    expect(result.status).toBe(400);
    expect(result.body.error.code).toBe('invalid_json');
  });

  it('answers 404 for an unknown order and 405 for other methods', async () => {
    expect((await call('GET', `${ordersPath}/nope`)).status).toBe(404);
    const put = await call('PUT', `${ordersPath}/nope`, { body: {} });
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('GET, HEAD, OPTIONS');
    expect((await call('GET', ordersPath)).headers.allow).toBe('POST, OPTIONS');
  });

  it('shows a failed order with its reason, and for out_of_stock the short items', async () => {
    const placed = await place('key-short');
    await advance(placed.body.orderId, {
      status: 'FAILED',
      failedAt: '2026-01-01T00:00:00.000Z',
      failureReason: 'out_of_stock',
      failureLines: [
        { itemId: 'o-a', short: false },
        { itemId: 'o-b', short: true },
      ],
      // Only for operators: the view never reads the short items out of a message.
      failureCause: 'Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]',
    });
    const read = await call('GET', `${ordersPath}/${placed.body.orderId}`);
    expect(read.body).toMatchObject({ status: 'FAILED', failedAt: '2026-01-01T00:00:00.000Z', failure: { reason: 'out_of_stock', items: ['o-b'] } });
    expect(read.body).not.toHaveProperty('failureCause');
    expect(read.body).not.toHaveProperty('failureLines');
  });
});

describe('a cell that cannot use its table', () => {
  const hung = startHangingServer();
  afterAll(async () => (await hung).close());

  /** An app over the given table, counting what it reports as table faults. */
  function appOver(doc: typeof table.doc, tableName: string) {
    const observability = createObservability('cell-test');
    const counted: string[] = [];
    vi.spyOn(observability.metrics, 'addMetric').mockImplementation((name) => {
      counted.push(name);
      return observability.metrics;
    });
    return { app: createApp({ entities: cellEntities(doc, tableName), orders: new OrderStore(doc, tableName, workflow) }, observability), counted };
  }

  const requests: Array<[string, string, Parameters<typeof albEvent>[2]]> = [
    ['GET', itemPath('w'), {}],
    ['PUT', itemPath('w'), { body: widget }],
    ['DELETE', itemPath('w'), {}],
    ['GET', `/tenants/${tenant}/items`, {}],
    [
      'POST',
      `/tenants/${tenant}/orders`,
      { body: { lines: [{ itemId: 'w', quantity: 1 }], customerId: 'c', payment: { token: 'tok_ok' } }, headers: { 'idempotency-key': 'k' } },
    ],
    ['GET', `/tenants/${tenant}/orders/o-1`, {}],
  ];

  it.each(requests)(
    'answers %s %s with 503 table_unavailable and Retry-After when the table is gone, and counts it',
    async (method, path, options) => {
      const { app: broken, counted } = appOver(table.doc, 'no-such-table');
      const result = (await broken.resolve(albEvent(method, path, options), lambdaContext)) as ALBResult;
      expect(result.statusCode).toBe(503);
      expect(JSON.parse(result.body!).error.code).toBe('table_unavailable');
      expect(result.headers?.['retry-after']).toBe('5');
      expect(counted).toContain('TableUnavailable');
    },
  );

  it('answers 503 table_unavailable when the table does not answer at all', async () => {
    const client = new DynamoDBClient({
      endpoint: (await hung).url,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      ...sdkClientConfig({ ...DATA_PLANE, maxAttempts: 1 }),
    });
    try {
      const { app: frozen } = appOver(DynamoDBDocumentClient.from(client), table.tableName);
      const result = (await frozen.resolve(albEvent('GET', itemPath('w')), lambdaContext)) as ALBResult;
      expect(result.statusCode).toBe(503);
      expect(JSON.parse(result.body!).error.code).toBe('table_unavailable');
    } finally {
      client.destroy();
    }
  });

  it('tells a throttled table (503 throttled, Retry-After 1) from a bug (500)', () => {
    const throttled = Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException' });
    expect(tableFault(throttled)).toBe('throttled');
    expect(tableFault(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe('unreachable');
    expect(tableFault(Object.assign(new Error('boom'), { $metadata: { httpStatusCode: 500 } }))).toBe('unreachable');
    expect(tableFault(new TypeError('x is undefined'))).toBeUndefined();
    expect(tableFault(Object.assign(new Error('bad'), { name: 'ValidationException', $metadata: { httpStatusCode: 400 } }))).toBeUndefined();
  });
});

describe('the route table', () => {
  it("is what the cell API answers: every route's methods, and Allow on 405, for every row", async () => {
    for (const route of ROUTES as readonly Route[]) {
      const path = route.path.replace(/:\w+/g, 'x');
      const wrong = HTTP_METHODS.find((method) => route.methods[method] === undefined);
      if (!wrong) continue;
      const refused = await call(wrong, path, wrong === 'GET' || wrong === 'HEAD' ? {} : { body: widget });
      expect([path, refused.status, refused.headers.allow]).toEqual([path, 405, allowedMethods(route)]);
    }
  });

  it('refuses, at init, a route without a handler and a handler without a route', () => {
    const extra: Route = { path: '/tenants/:tenantId/suppliers', methods: { GET: 'items.read' } };
    expect(() => registerRoutes(new Router(), [...ROUTES, extra], {})).toThrow(/no handler for GET \/tenants\/:tenantId\/suppliers/);
    expect(() =>
      registerRoutes(new Router(), [extra], { '/tenants/:tenantId/suppliers': { GET: async () => new Response(), PUT: async () => new Response() } }),
    ).toThrow(/a handler for PUT \/tenants\/:tenantId\/suppliers, which the route does not list/);
  });
});
