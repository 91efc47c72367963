import type { ALBResult } from 'aws-lambda';
import { PutCommand, DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { encodeBuckets } from '../../../routing/bucket-codec.ts';
import { evenSplit, routeTenant } from '../../../routing/routing.ts';
import { createApp, MISDIRECTED } from '../../../functions/cell-api/app.ts';
import { cellEntities } from '../../../functions/cell-api/entities.ts';
import { OrderStore } from '../../../functions/cell-api/order-store.ts';
import { MOVING_REREAD_MS, OwnershipCache } from '../../../functions/cell-api/ownership.ts';
import { WriteDeadlines, WriteWindowClosedError } from '../../../functions/cell-api/write-deadline.ts';
import {
  OWNERSHIP_KEY,
  WRITE_SETTLE_MS,
  WRITE_WINDOW_MS,
  itemKey,
  moveMarkerKey,
  type CellOwnershipRecord,
} from '../../../layers/shared/src/contracts/cell-table.ts';
import { createObservability } from '../../../layers/shared/src/observability.ts';
import { albEvent, lambdaContext } from '../../support/alb.ts';
import { cellOfBucket } from '../../support/routing.ts';
import { createCellTable } from '../../support/tables.ts';
import { startHangingServer } from '../../support/hanging-server.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DATA_PLANE, sdkClientConfig } from '../../../layers/shared/src/sdk-timeouts.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../../local/dynamodb-local.ts';

const cells = ['cell-1', 'cell-2'];
const map = evenSplit(cells);
const mine = ['t-a', 't-b', 't-c', 't-d', 't-e', 't-f'].find((t) => cellOfBucket(map, t) === 'cell-1')!;
const theirs = ['t-a', 't-b', 't-c', 't-d', 't-e', 't-f'].find((t) => cellOfBucket(map, t) === 'cell-2')!;
const widget = { title: 'Widget', price: { amount: 1, currency: 'EUR' }, stock: 1 };

let table: Awaited<ReturnType<typeof createCellTable>>;
let clock = 0;
let ownership: OwnershipCache;
let app: ReturnType<typeof createApp>;

/** The record the control plane writes into this cell's table for a map version. */
async function writeRecord(epoch: number, overrides: Record<string, string> = {}) {
  const record: CellOwnershipRecord = { epoch, ...encodeBuckets(map), overrides };
  await table.doc.send(new PutCommand({ TableName: table.tableName, Item: { ...OWNERSHIP_KEY, ...record } }));
}

beforeAll(async () => {
  table = await createCellTable(inject('dynamoEndpoint'));
  ownership = new OwnershipCache(table.doc, table.tableName, 'cell-1', { leaseMs: 1_000, now: () => clock });
  app = createApp(
    {
      entities: cellEntities(table.doc, table.tableName),
      orders: new OrderStore(table.doc, table.tableName, { start: async () => undefined }),
      ownership,
    },
    createObservability('ownership-test'),
  );
});
afterAll(async () => table?.drop());

async function call(method: string, path: string, options: Parameters<typeof albEvent>[2] = {}) {
  const result = (await app.resolve(albEvent(method, path, options), lambdaContext)) as ALBResult;
  return { status: result.statusCode, body: result.body ? JSON.parse(result.body) : undefined };
}

describe('a cell that fences what it does not own', () => {
  it('serves every tenant while it has no ownership record (a map that never changed since its seed)', async () => {
    clock += 10_000;
    expect((await call('PUT', `/tenants/${theirs}/items/w`, { body: widget })).status).toBe(201);
    await table.doc.send(new DeleteCommand({ TableName: table.tableName, Key: itemKey(theirs, 'w') }));
  });

  it('refuses reads and writes of a tenant its record gives to another cell, with 421, its id and epoch, and writes nothing', async () => {
    await writeRecord(5);
    clock += 10_000;
    const put = await call('PUT', `/tenants/${theirs}/items/w2`, { body: widget });
    expect(put).toMatchObject({ status: MISDIRECTED, body: { error: { code: 'misdirected', details: { cellId: 'cell-1', epoch: 5 } } } });
    expect((await table.doc.send(new GetCommand({ TableName: table.tableName, Key: itemKey(theirs, 'w2') }))).Item).toBeUndefined();
    expect((await call('GET', `/tenants/${theirs}/items`)).status).toBe(MISDIRECTED);
    expect((await call('POST', `/tenants/${theirs}/orders`, { body: {}, headers: { 'idempotency-key': 'k' } })).status).toBe(MISDIRECTED);
    expect((await call('PUT', `/tenants/${mine}/items/w2`, { body: widget })).status).toBe(201);
  });

  it('follows pins both ways: a tenant pinned here is served, one pinned away is refused', async () => {
    await writeRecord(6, { [theirs]: 'cell-1', [mine]: 'cell-2' });
    clock += 10_000;
    expect((await call('GET', `/tenants/${theirs}/items`)).status).toBe(200);
    expect((await call('GET', `/tenants/${mine}/items`)).status).toBe(MISDIRECTED);
  });

  it('trusts a record for its lease only: a change is seen by the first request after it, with one read for all that wait', async () => {
    await writeRecord(7);
    clock += 10_000;
    expect((await ownership.check(mine)).epoch).toBe(7);
    await writeRecord(8, { [mine]: 'cell-2' });
    clock += 999;
    // Within the lease: no read, the record before.
    expect(await ownership.check(mine)).toMatchObject({ owned: true, epoch: 7 });
    clock += 1;
    const send = vi.spyOn(table.doc, 'send');
    try {
      const judged = await Promise.all([mine, mine, theirs].map((tenant) => ownership.check(tenant)));
      expect(judged.map((j) => [j.owned, j.epoch])).toEqual([
        [false, 8],
        [false, 8],
        [false, 8],
      ]);
      expect(send).toHaveBeenCalledTimes(1);
    } finally {
      send.mockRestore();
    }
  });
});

describe('a cell whose ownership record cannot be used', () => {
  const appOver = (doc: typeof table.doc) =>
    createApp(
      {
        entities: cellEntities(table.doc, table.tableName),
        orders: new OrderStore(table.doc, table.tableName, { start: async () => undefined }),
        ownership: new OwnershipCache(doc, table.tableName, 'cell-1'),
      },
      createObservability('ownership-test'),
    );

  it('answers 503 table_unavailable, neither hanging nor serving, when its table does not answer (a frozen DynamoDB)', async () => {
    const hung = await startHangingServer();
    const client = new DynamoDBClient({
      endpoint: hung.url,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      ...sdkClientConfig({ ...DATA_PLANE, maxAttempts: 1 }),
    });
    try {
      const result = (await appOver(DynamoDBDocumentClient.from(client)).resolve(
        albEvent('GET', `/tenants/${mine}/items`),
        lambdaContext,
      )) as ALBResult;
      expect([result.statusCode, JSON.parse(result.body!).error.code]).toEqual([503, 'table_unavailable']);
    } finally {
      client.destroy();
      await hung.close();
    }
  });

  it('refuses every tenant with 503 ownership_unreadable, serving none, when the record cannot be decoded', async () => {
    await table.doc.send(
      new PutCommand({ TableName: table.tableName, Item: { ...OWNERSHIP_KEY, epoch: 9, cells: ['cell-1'], buckets: 'not a map', overrides: {} } }),
    );
    try {
      const result = (await appOver(table.doc).resolve(
        albEvent('PUT', `/tenants/${mine}/items/corrupt`, { body: widget }),
        lambdaContext,
      )) as ALBResult;
      expect([result.statusCode, JSON.parse(result.body!).error.code]).toEqual([503, 'ownership_unreadable']);
      expect((await table.doc.send(new GetCommand({ TableName: table.tableName, Key: itemKey(mine, 'corrupt') }))).Item).toBeUndefined();
    } finally {
      await table.doc.send(new DeleteCommand({ TableName: table.tableName, Key: OWNERSHIP_KEY }));
    }
  });
});

describe('a cell taking part in a move', () => {
  const marker = (role: 'source' | 'target', tenants: string[], fenceAt?: number) =>
    table.doc.send(
      new PutCommand({
        TableName: table.tableName,
        Item: { ...moveMarkerKey(`m-${role}`), moveId: `m-${role}`, role, buckets: [], tenants, ...(fenceAt !== undefined && { fenceAt }) },
      }),
    );
  const unmark = (role: 'source' | 'target') => table.doc.send(new DeleteCommand({ TableName: table.tableName, Key: moveMarkerKey(`m-${role}`) }));

  it('as the source: serves reads of a fenced tenant, refuses its writes with 503 and Retry-After, and holds its writes to the fence before', async () => {
    await writeRecord(20);
    await marker('source', [mine], 50_000_000);
    try {
      clock = 40_000_000;
      // Before the fence: served, with the fence as the writes' deadline, and its writes journaled for the move.
      expect(await ownership.check(mine)).toMatchObject({
        owned: true,
        fenced: false,
        writeDeadline: 40_000_000 + WRITE_WINDOW_MS,
        journal: 'm-source',
      });
      // The other tenants of the cell: nothing journaled.
      expect((await ownership.check(`${mine}-calm`)).journal).toBeUndefined();
      clock = 49_999_000;
      expect((await ownership.check(mine)).writeDeadline).toBe(50_000_000);
      clock = 50_000_000;
      expect(await ownership.check(mine)).toMatchObject({ owned: true, fenced: true });
      expect((await call('GET', `/tenants/${mine}/items`)).status).toBe(200);
      const put = await call('PUT', `/tenants/${mine}/items/fenced`, { body: widget });
      expect(put).toMatchObject({ status: 503, body: { error: { code: 'tenant_moving' } } });
      expect((await table.doc.send(new GetCommand({ TableName: table.tableName, Key: itemKey(mine, 'fenced') }))).Item).toBeUndefined();
    } finally {
      await unmark('source');
    }
  });

  it('reads its record again at once (not a lease later) for a moving tenant it refuses, so it serves it as soon as the flip is written', async () => {
    await writeRecord(21);
    await marker('target', [theirs]);
    clock += 10_000;
    expect(await ownership.check(theirs)).toMatchObject({ owned: false });
    // The flip: the target's record gives it the tenant.
    await writeRecord(22, { [theirs]: 'cell-1' });
    // Within the lease, and within MOVING_REREAD_MS of the last read: read anyway.
    clock += 1;
    expect(await ownership.check(theirs)).toMatchObject({ owned: true, epoch: 22 });
    await unmark('target');
  });

  it('as a fenced source: learns of the flip within MOVING_REREAD_MS, not a lease', async () => {
    await writeRecord(23);
    await marker('source', [mine], 1);
    try {
      clock += 10_000;
      expect(await ownership.check(mine)).toMatchObject({ owned: true, fenced: true });
      await writeRecord(24, { [mine]: 'cell-2' });
      clock += MOVING_REREAD_MS;
      expect(await ownership.check(mine)).toMatchObject({ owned: false, epoch: 24, fenced: false });
    } finally {
      await unmark('source');
    }
  });
});

describe('the write deadline', () => {
  function guarded(now: () => number) {
    const client = new DynamoDBClient({ endpoint: inject('dynamoEndpoint'), region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const deadlines = new WriteDeadlines(now);
    deadlines.guard(client);
    return { doc: DynamoDBDocumentClient.from(client), deadlines, client };
  }

  it('sends no write after its deadline, lets reads through, and does not take a late answer as success', async () => {
    // The clock as the guard reads it: once before an attempt is sent, once when its answer is back.
    let at = 1_000;
    const times: number[] = [];
    const { doc, deadlines, client } = guarded(() => times.shift() ?? at);
    const key = itemKey('deadline', 'w');
    try {
      await expect(deadlines.run(999, () => doc.send(new PutCommand({ TableName: table.tableName, Item: { ...key, n: 1 } })))).rejects.toThrow(
        WriteWindowClosedError,
      );
      expect((await doc.send(new GetCommand({ TableName: table.tableName, Key: key }))).Item).toBeUndefined();
      await deadlines.run(999, () => doc.send(new GetCommand({ TableName: table.tableName, Key: key })));
      await deadlines.run(1_001, () => doc.send(new PutCommand({ TableName: table.tableName, Item: { ...key, n: 2 } })));
      // Sent in time, answered after the deadline and the settle time: applied, but not acknowledged.
      times.push(1_000, 1_001 + WRITE_SETTLE_MS);
      await expect(deadlines.run(1_001, () => doc.send(new PutCommand({ TableName: table.tableName, Item: { ...key, n: 3 } })))).rejects.toThrow(
        'answered too late',
      );
      at = 5_000;
      // Outside any request: no deadline.
      await doc.send(new PutCommand({ TableName: table.tableName, Item: { ...key, n: 4 } }));
    } finally {
      client.destroy();
    }
  });
});

describe('the ownership cache, read by read', () => {
  /** A cache over a table of its own, with its clock, its Queries counted, and a gate that can hold one Query's answer. */
  const owned: Array<Awaited<ReturnType<typeof createCellTable>>> = [];
  afterEach(async () => {
    for (const own of owned.splice(0)) await own.drop();
  });

  async function cacheWithCountedReads() {
    const own = await createCellTable(inject('dynamoEndpoint'));
    owned.push(own);
    const queries: Array<Record<string, unknown>> = [];
    let gate: { answered: () => void; released: Promise<void> } | undefined;
    own.doc.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as Record<string, unknown>;
        if (!('KeyConditionExpression' in input)) return next(args);
        queries.push(input);
        const held = gate;
        gate = undefined;
        const output = await next(args);
        if (held) {
          held.answered();
          await held.released;
        }
        return output;
      },
      { step: 'initialize', name: 'countQueries' },
    );
    const at = { now: 1_000_000 };
    const cache = new OwnershipCache(own.doc, own.tableName, 'cell-1', { leaseMs: 1_000, now: () => at.now });
    const put = (item: Record<string, unknown>) => own.doc.send(new PutCommand({ TableName: own.tableName, Item: item }));
    return {
      own,
      cache,
      at,
      queries,
      /** Holds the next Query's answer: `answered` resolves once the table has answered it, `release` lets it through. */
      holdNextAnswer: () => {
        let answered!: () => void;
        let release!: () => void;
        const reached = new Promise<void>((resolve) => (answered = resolve));
        gate = { answered, released: new Promise((resolve) => (release = resolve)) };
        return { answered: reached, release };
      },
      record: (epoch: number, overrides: Record<string, string> = {}, bucketMap = map) =>
        put({ ...OWNERSHIP_KEY, epoch, ...encodeBuckets(bucketMap), overrides }),
      marker: (role: 'source' | 'target', content: { buckets?: number[]; tenants?: string[] }, fenceAt?: number) =>
        put({
          ...moveMarkerKey(`m-${role}`),
          moveId: `m-${role}`,
          role,
          buckets: [],
          tenants: [],
          ...content,
          ...(fenceAt !== undefined && { fenceAt }),
        }),
    };
  }

  it('names an unreadable record, with its epoch', async () => {
    const { own, cache } = await cacheWithCountedReads();
    await own.doc.send(
      new PutCommand({ TableName: own.tableName, Item: { ...OWNERSHIP_KEY, epoch: 9, cells: ['cell-1'], buckets: 'not a map', overrides: {} } }),
    );
    await expect(cache.check(mine)).rejects.toMatchObject({
      name: 'OwnershipUnreadableError',
      message: "the cell's ownership record (epoch 9) cannot be read as a map",
    });
  });

  it('reads consistently, once per lease, and gives a write the lease as its deadline', async () => {
    const { cache, at, queries, record } = await cacheWithCountedReads();
    await record(3);
    expect(await cache.check(mine)).toMatchObject({
      owned: true,
      epoch: 3,
      owner: 'cell-1',
      fenced: false,
      writeDeadline: 1_000_000 + WRITE_WINDOW_MS,
    });
    at.now += 999;
    await cache.check(mine);
    await cache.check(theirs);
    expect(queries).toEqual([expect.objectContaining({ ConsistentRead: true })]);
    at.now += 1;
    expect((await cache.check(mine)).writeDeadline).toBe(1_001_000 + WRITE_WINDOW_MS);
    expect(queries).toHaveLength(2);
  });

  it('serves every tenant again once its record is gone', async () => {
    const { own, cache, at, record } = await cacheWithCountedReads();
    await record(4);
    expect((await cache.check(theirs)).owned).toBe(false);
    await own.doc.send(new DeleteCommand({ TableName: own.tableName, Key: OWNERSHIP_KEY }));
    at.now += 1_000;
    expect(await cache.check(theirs)).toMatchObject({ owned: true, epoch: undefined, owner: undefined });
  });

  it('reads sooner only for a fenced tenant, and then no more than every MOVING_REREAD_MS', async () => {
    const { cache, at, queries, record, marker } = await cacheWithCountedReads();
    await record(5);
    // Moving but not fenced yet: the lease as for any tenant.
    await marker('source', { tenants: [mine] }, at.now + 60_000);
    expect(await cache.check(mine)).toMatchObject({ owned: true, fenced: false, writeDeadline: at.now + WRITE_WINDOW_MS });
    at.now += MOVING_REREAD_MS;
    await cache.check(mine);
    expect(queries).toHaveLength(1);
    // Fenced: read again once MOVING_REREAD_MS has passed since the last read, not before.
    at.now += 60_000;
    expect(await cache.check(mine)).toMatchObject({ fenced: true });
    expect(queries).toHaveLength(2);
    at.now += MOVING_REREAD_MS - 1;
    expect(await cache.check(mine)).toMatchObject({ fenced: true });
    expect(queries).toHaveLength(2);
    at.now += 1;
    await cache.check(mine);
    expect(queries).toHaveLength(3);
  });

  it("moves a bucket's tenants with it, but not a tenant pinned out of the map, and fences none it no longer owns", async () => {
    const { cache, at, record, marker } = await cacheWithCountedReads();
    // Two tenants of one bucket of this cell's.
    const seen = new Map<number, string>();
    let byMap = '';
    let pinned = '';
    let bucket = -1;
    for (let n = 0; !pinned; n += 1) {
      const route = routeTenant(map, {}, `n-${n}`);
      if (route.cellId !== 'cell-1') continue;
      const first = seen.get(route.bucket);
      if (first === undefined) seen.set(route.bucket, `n-${n}`);
      else [byMap, pinned, bucket] = [first, `n-${n}`, route.bucket];
    }
    await record(6, { [pinned]: 'cell-1' });
    await marker('source', { buckets: [bucket] }, 1);
    expect(await cache.check(byMap)).toMatchObject({ owned: true, fenced: true, writeDeadline: 1 });
    expect(await cache.check(pinned)).toMatchObject({ owned: true, fenced: false, writeDeadline: at.now + WRITE_WINDOW_MS });
    // The flip: the bucket is the other cell's; the marker is not removed yet.
    const moved = [...map];
    moved[bucket] = 'cell-2';
    await record(7, { [pinned]: 'cell-1' }, moved);
    at.now += 1_000;
    expect(await cache.check(byMap)).toMatchObject({ owned: false, owner: 'cell-2', epoch: 7, fenced: false });
  });

  it('fences a moving bucket in a cell that has no ownership record yet', async () => {
    const { cache, marker } = await cacheWithCountedReads();
    await marker('source', { buckets: [routeTenant(map, {}, mine).bucket] }, 1);
    expect(await cache.check(mine)).toMatchObject({ owned: true, epoch: undefined, fenced: true });
  });

  it('never lets an older read, answered late, replace a newer one', async () => {
    const { cache, at, record, marker, holdNextAnswer } = await cacheWithCountedReads();
    await record(8);
    await marker('target', { tenants: [theirs] });
    expect((await cache.check(mine)).epoch).toBe(8);
    // A refused moving tenant reads at once, on a read of its own; that read's answer (epoch 8) is held.
    const held = holdNextAnswer();
    const late = cache.check(theirs);
    await held.answered;
    // Meanwhile the flip is written, and a newer read (the lease is out) sees it.
    await record(9, { [theirs]: 'cell-1' });
    at.now += 1_000;
    expect(await cache.check(mine)).toMatchObject({ owned: true, epoch: 9 });
    held.release();
    expect(await late).toMatchObject({ owned: true, epoch: 9 });
    expect(await cache.check(theirs)).toMatchObject({ owned: true, epoch: 9 });
  });
});
