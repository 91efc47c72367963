import type { ALBResult } from 'aws-lambda';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { bucketOf } from '../../../routing/routing.ts';
import { CellData } from '../../../control-plane/cell-data.ts';
import { createApp } from '../../../functions/cell-api/app.ts';
import { TenantDirectory } from '../../../functions/cell-api/directory.ts';
import { cellEntities } from '../../../functions/cell-api/entities.ts';
import { OrderStore } from '../../../functions/cell-api/order-store.ts';
import { directoryKey, itemKey } from '../../../layers/shared/src/contracts/cell-table.ts';
import { createObservability } from '../../../layers/shared/src/observability.ts';
import { albEvent, lambdaContext } from '../../support/alb.ts';
import { createCellTable } from '../../support/tables.ts';

const widget = { title: 'Widget', price: { amount: 1, currency: 'EUR' }, stock: 1 };
let table: Awaited<ReturnType<typeof createCellTable>>;

beforeAll(async () => {
  table = await createCellTable(inject('dynamoEndpoint'));
});
afterAll(async () => table?.drop());

function appWith(directory: Pick<TenantDirectory, 'record'>) {
  return createApp(
    {
      entities: cellEntities(table.doc, table.tableName),
      orders: new OrderStore(table.doc, table.tableName, { start: async () => undefined }),
      directory,
    },
    createObservability('directory-test'),
  );
}

async function call(app: ReturnType<typeof createApp>, method: string, path: string, options: Parameters<typeof albEvent>[2] = {}) {
  return ((await app.resolve(albEvent(method, path, options), lambdaContext)) as ALBResult).statusCode;
}

const entryOf = async (tenantId: string) =>
  (await table.doc.send(new GetCommand({ TableName: table.tableName, Key: directoryKey(bucketOf(tenantId), tenantId) }))).Item;

describe('the tenant directory', () => {
  it('records a tenant under its bucket before its first write, once per instance, and never for a read', async () => {
    const directory = new TenantDirectory(table.doc, table.tableName);
    const app = appWith(directory);
    const send = vi.spyOn(table.doc, 'send');
    try {
      expect(await call(app, 'GET', '/tenants/reader/items')).toBe(200);
      expect(await entryOf('reader')).toBeUndefined();
      expect(await call(app, 'PUT', '/tenants/writer/items/a', { body: widget })).toBe(201);
      expect(await call(app, 'PUT', '/tenants/writer/items/b', { body: widget })).toBe(201);
      const directoryPuts = send.mock.calls.filter(
        ([command]) => command instanceof PutCommand && String(command.input.Item?.pk).startsWith('BUCKET#'),
      );
      expect(directoryPuts).toHaveLength(1);
    } finally {
      send.mockRestore();
    }
    expect(await entryOf('writer')).toMatchObject({ entity: 'directory', tenantId: 'writer', bucket: bucketOf('writer') });
  });

  it('takes a tenant another instance recorded first as recorded', async () => {
    await appWith(new TenantDirectory(table.doc, table.tableName)).resolve(
      albEvent('PUT', '/tenants/twice/items/a', { body: widget }),
      lambdaContext,
    );
    expect(await call(appWith(new TenantDirectory(table.doc, table.tableName)), 'PUT', '/tenants/twice/items/b', { body: widget })).toBe(201);
  });

  it('fails the write, writing nothing of the tenant, when the entry cannot be recorded', async () => {
    const failing = { record: async () => Promise.reject(Object.assign(new Error('throttled'), { name: 'ThrottlingException' })) };
    expect(await call(appWith(failing), 'PUT', '/tenants/unrecorded/items/a', { body: widget })).toBe(503);
    expect((await table.doc.send(new GetCommand({ TableName: table.tableName, Key: itemKey('unrecorded', 'a') }))).Item).toBeUndefined();
  });

  it("gives the operators a bucket's tenants with one Query, not a scan", async () => {
    const directory = new TenantDirectory(table.doc, table.tableName);
    const app = appWith(directory);
    const sameBucket: string[] = [];
    const bucket = bucketOf('writer');
    for (let n = 0; sameBucket.length < 2; n++) if (bucketOf(`b-${n}`) === bucket) sameBucket.push(`b-${n}`);
    for (const tenant of sameBucket) expect(await call(app, 'PUT', `/tenants/${tenant}/items/x`, { body: widget })).toBe(201);
    const cell = { cellId: 'c', status: 'active' as const, weight: 1, apiFunctionArn: 'arn', tableName: table.tableName };
    expect((await new CellData(table.doc).tenantsIn(cell, bucket)).sort()).toEqual([...sameBucket, 'writer'].sort());
  });
});
