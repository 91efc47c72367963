import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { messageOf } from '../../../functions/publisher/changes.ts';
import { ITEM } from '@item-master/shared';
import type { Item } from '../../../functions/cell-api/schema.ts';
import { ItemStore } from '../../../functions/cell-api/item-store.ts';
import { InvalidCursorError, NotFoundError, VersionConflictError } from '../../../functions/cell-api/versioned-store.ts';
import { createCellTable } from '../../support/tables.ts';
import { recordCommands } from '../../support/commands.ts';

// The store on its own, under what the API never sends it: fields given as undefined, a clock that stands still, records from before incarnations.
let table: Awaited<ReturnType<typeof createCellTable>>;
const tenant = 'tenant-store';
const widget = { title: 'Widget', price: { amount: 100, currency: 'EUR' }, stock: 3 };
const stillClock = () => new Date('2026-01-01T00:00:00.000Z');

beforeAll(async () => {
  table = await createCellTable(inject('dynamoEndpoint'));
});
afterAll(async () => {
  await table?.drop();
});

describe('VersionedStore', () => {
  it('names its errors, so that logs and callers can tell them apart', async () => {
    const store = new ItemStore(table.doc, table.tableName);
    const missing = await store.patch(tenant, 'nowhere', { stock: 1 }, 1).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ name: 'NotFoundError', message: 'item nowhere does not exist' });
    await store.put(tenant, 'named', widget);
    const stale = await store.put(tenant, 'named', widget, 7).catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(VersionConflictError);
    expect(stale).toMatchObject({ name: 'VersionConflictError', message: 'item named is at version 1, not 7', expected: 7, actual: 1 });
    const cursor = await store.list(tenant, 1, 'not-ours').catch((error: unknown) => error);
    expect(cursor).toBeInstanceOf(InvalidCursorError);
    expect(cursor).toMatchObject({ name: 'InvalidCursorError', message: 'the cursor is not one this API returned' });
  });

  it("publishes every write over a move's copy, even one in the copy's own millisecond: put, patch and delete drop the marker", async () => {
    const store = new ItemStore(table.doc, table.tableName, stillClock);
    const key = { pk: `TENANT#${tenant}`, sk: `${ITEM.skPrefix}copied` };
    const copy = async () => table.doc.send(new UpdateCommand({ TableName: table.tableName, Key: key, UpdateExpression: 'SET copyOf = updatedAt' }));
    const stored = async () => (await table.doc.send(new GetCommand({ TableName: table.tableName, Key: key, ConsistentRead: true }))).Item!;
    const published = async () => messageOf({ eventName: 'MODIFY', dynamodb: { NewImage: marshall(await stored()) as never } })?.message;
    await store.put(tenant, 'copied', widget);
    await copy();
    expect(await published()).toBeUndefined();
    for (const write of [
      () => store.put(tenant, 'copied', { ...widget, stock: 9 }),
      () => store.patch(tenant, 'copied', { stock: 8 }, 2),
      () => store.delete(tenant, 'copied'),
    ]) {
      await write();
      expect((await stored()).copyOf).toBeUndefined();
      expect(await published()).toMatchObject({ type: expect.stringMatching(/^item\.(updated|deleted)$/) });
      await copy();
    }
  });

  it('takes a field given as undefined as not given: put removes it, patch leaves it', async () => {
    const store = new ItemStore(table.doc, table.tableName);
    await store.put(tenant, 'undefined-fields', { ...widget, description: 'kept until put' });
    const patched = await store.patch(tenant, 'undefined-fields', { stock: 4, description: undefined }, 1);
    expect(patched).toMatchObject({ stock: 4, description: 'kept until put', version: 2 });
    const { record } = await store.put(tenant, 'undefined-fields', { ...widget, description: undefined });
    expect(record).not.toHaveProperty('description');
    expect(record).toMatchObject({ ...widget, version: 3 });
  });

  it('tells a creation from a replace by its incarnation, even when the clock has not moved', async () => {
    const store = new ItemStore(table.doc, table.tableName, stillClock);
    expect((await store.put(tenant, 'same-instant', widget)).created).toBe(true);
    expect((await store.put(tenant, 'same-instant', widget)).created).toBe(false);
    await store.delete(tenant, 'same-instant');
    expect((await store.put(tenant, 'same-instant', widget)).created).toBe(true);
  });

  it('takes a replace of a record written before incarnations for a replace, not a creation', async () => {
    const store = new ItemStore(table.doc, table.tableName);
    const key = { pk: `TENANT#${tenant}`, sk: `${ITEM.skPrefix}legacy` };
    await table.doc.send(
      new PutCommand({
        TableName: table.tableName,
        Item: {
          ...key,
          entity: 'item',
          tenantId: tenant,
          itemId: 'legacy',
          ...widget,
          version: 4,
          createdAt: '2025-01-01T00:00:00.000Z',
          updatedAt: '2025-01-01T00:00:00.000Z',
        },
      }),
    );
    const { record, created } = await store.put(tenant, 'legacy', widget);
    expect(created).toBe(false);
    expect(record).toMatchObject({ version: 5, createdAt: '2025-01-01T00:00:00.000Z' });
    // It has one from now on, and keeps it.
    const { Item } = await table.doc.send(new GetCommand({ TableName: table.tableName, Key: key }));
    expect(Item?.incarnation).toEqual(expect.any(String));
  });

  it('reads strongly consistent, so that a read after a write sees it', async () => {
    const store = new ItemStore(table.doc, table.tableName);
    const commands = recordCommands(table.doc);
    try {
      await store.put(tenant, 'consistent', widget);
      expect(await store.get(tenant, 'consistent')).toMatchObject<Partial<Item>>({ title: 'Widget', version: 1 });
    } finally {
      commands.stop();
    }
    const reads = commands.sent.filter(({ name }) => name === 'GetItemCommand');
    expect(reads).toEqual([expect.objectContaining({ input: expect.objectContaining({ ConsistentRead: true }) })]);
  });
});
