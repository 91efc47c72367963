import type { ALBResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Router } from '@aws-lambda-powertools/event-handler/http';
import { createObservability } from '../../layers/shared/src/observability.ts';
import { createApp, entityApi, registerRoutes } from '../../functions/cell-api/app.ts';
import { OrderStore } from '../../functions/cell-api/order-store.ts';
import { cellEntities } from '../../functions/cell-api/entities.ts';
import { VersionedStore } from '../../functions/cell-api/versioned-store.ts';
import { ROUTES, routeTableProblems, type Route } from '../../layers/shared/src/contracts/routes.ts';
import { EXAMPLE_ENTITY, exampleInputSchema, ROUTES_WITH_EXAMPLES, type Example } from '../fixtures/example-entity.ts';
import { albEvent, lambdaContext } from '../support/alb.ts';
import { createCellTable } from '../support/tables.ts';

// The "Add an entity" recipe (docs/forking.md), carried out in a fixture: no product file knows this entity.
let table: Awaited<ReturnType<typeof createCellTable>>;
let app: Router;

beforeAll(async () => {
  table = await createCellTable(inject('dynamoEndpoint'));
  const examples = new VersionedStore<Example>(table.doc, table.tableName, EXAMPLE_ENTITY);
  app = createApp(
    {
      // The product's entities (a fork's own included) and the fixture's.
      entities: [...cellEntities(table.doc, table.tableName), entityApi(examples, exampleInputSchema)],
      orders: new OrderStore(table.doc, table.tableName, { start: async () => undefined }),
    },
    createObservability('recipe-test'),
    ROUTES_WITH_EXAMPLES,
  );
});
afterAll(async () => {
  await table?.drop();
});

async function call(method: string, path: string, options: Parameters<typeof albEvent>[2] = {}) {
  const result = (await app.resolve(albEvent(method, path, options), lambdaContext)) as ALBResult;
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  for (const [k, vs] of Object.entries(result.multiValueHeaders ?? {})) headers[k.toLowerCase()] = vs.join(', ');
  return { status: result.statusCode, body: result.body ? (JSON.parse(result.body) as any) : undefined, headers };
}

const acme = { name: 'Acme Parts', email: 'sales@acme.example', countries: ['DE', 'FR'] };

describe('an entity added by the recipe', () => {
  it('is created, read, replaced, patched and deleted with versions and ETags like the items', async () => {
    const path = '/tenants/t-1/examples/acme';
    const created = await call('PUT', path, { body: acme });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenantId: 't-1', exampleId: 'acme', version: 1, ...acme });
    expect(created.body).not.toHaveProperty('pk');
    expect(created.body).not.toHaveProperty('entity');
    expect(created.headers.etag).toBe('"1"');

    const read = await call('GET', path);
    expect(read).toMatchObject({ status: 200, body: created.body });

    const replaced = await call('PUT', path, { body: { name: 'Acme' }, headers: { 'if-match': '"1"' } });
    expect(replaced.status).toBe(200);
    // A replace removes the fields it is not given; defaults are filled in.
    expect(replaced.body).toMatchObject({ name: 'Acme', countries: [], version: 2 });
    expect(replaced.body).not.toHaveProperty('email');

    const stale = await call('PUT', path, { body: acme, headers: { 'if-match': '"1"' } });
    expect(stale).toMatchObject({ status: 409, body: { error: { code: 'version_conflict', details: { expected: 1, actual: 2 } } } });
    expect(stale.body.error.message).toBe('example acme is at version 2, not 1');

    const patched = await call('PATCH', path, { body: { email: 'hi@acme.example' }, headers: { 'if-match': '"2"' } });
    expect(patched.body).toMatchObject({ name: 'Acme', email: 'hi@acme.example', version: 3 });
    const removed = await call('PATCH', path, { body: { email: null }, headers: { 'if-match': '"3"' } });
    expect(removed.body).not.toHaveProperty('email');
    expect((await call('PATCH', path, { body: {}, headers: { 'if-match': '"4"' } })).status).toBe(400);
    expect((await call('PATCH', path, { body: { name: 'x' } })).status).toBe(428);

    expect((await call('DELETE', path, { headers: { 'if-match': '"4"' } })).status).toBe(204);
    expect(await call('GET', path)).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: 'example acme does not exist' } } });
    // Created again, it goes on from the tombstone's version: an ETag never repeats.
    expect((await call('PUT', path, { body: acme })).body.version).toBe(6);
  });

  it('validates its body with its own schema', async () => {
    const answer = await call('PUT', '/tenants/t-1/examples/bad', { body: { name: '', colour: 'red' } });
    expect(answer.status).toBe(400);
    expect(answer.body.error.details.map((detail: { path: string }) => detail.path)).toEqual(expect.arrayContaining(['body.name', 'body']));
  });

  it('pages its own records with a cursor, apart from the items of the same tenant', async () => {
    for (const id of ['s-1', 's-2', 's-3']) expect((await call('PUT', `/tenants/t-2/examples/${id}`, { body: acme })).status).toBe(201);
    await call('PUT', '/tenants/t-2/items/i-1', { body: { title: 'Widget', price: { amount: 1, currency: 'EUR' }, stock: 1 } });
    const first = await call('GET', '/tenants/t-2/examples?limit=2');
    expect(first.body.items.map((s: Example) => s.exampleId)).toEqual(['s-1', 's-2']);
    const second = await call('GET', `/tenants/t-2/examples?limit=2&cursor=${first.body.cursor}`);
    expect(second.body).toEqual({ items: [expect.objectContaining({ exampleId: 's-3' })] });
    const items = await call('GET', '/tenants/t-2/items');
    expect(items.body.items.map((item: { itemId: string }) => item.itemId)).toEqual(['i-1']);
  });

  it('answers the methods its rows do not list with 405 and their Allow', async () => {
    const answer = await call('POST', '/tenants/t-1/examples/acme', { body: acme });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('GET, HEAD, PUT, PATCH, DELETE, OPTIONS');
  });
});

describe('a route table', () => {
  it('refuses a method without a known scope, whatever its type says', () => {
    const unscoped = { path: '/tenants/:tenantId/examples', methods: { GET: undefined } } as unknown as Route;
    const misspelt = { path: '/tenants/:tenantId/parts', methods: { GET: 'parts.read' } } as unknown as Route;
    expect(routeTableProblems([...ROUTES, unscoped, misspelt])).toEqual([
      'GET /tenants/:tenantId/examples names no known scope (undefined)',
      'GET /tenants/:tenantId/parts names no known scope (parts.read)',
    ]);
    expect(() => registerRoutes(new Router(), [...ROUTES, misspelt], {})).toThrow(/names no known scope/);
  });

  it('is sound as shipped', () => {
    expect(routeTableProblems(ROUTES)).toEqual([]);
  });
});
