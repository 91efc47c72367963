import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { FENCE_WAIT_MS, OWNERSHIP_KEY } from '../../layers/shared/src/contracts/cell-table.ts';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CellData } from '../../control-plane/cell-data.ts';
import { CellOperations } from '../../control-plane/operations.ts';
import type { CellRegistration } from '../../routing/records.ts';
import { evenSplit, routeTenant } from '../../routing/routing.ts';
import { ControlPlaneError, NotFoundError, OperationError } from '../../control-plane/errors.ts';
import { ControlPlaneStore, MapConflictError, UnknownCellError } from '../../control-plane/store.ts';
import { createCellTable } from '../support/tables.ts';
import { DeployTimeCalls } from '../support/deploy-time.ts';

type Table = Awaited<ReturnType<typeof createCellTable>>;
const endpoint = () => inject('dynamoEndpoint');
const tables: Table[] = [];

async function table(prefix: string): Promise<Table> {
  const created = await createCellTable(endpoint(), prefix);
  tables.push(created);
  return created;
}
afterAll(async () => {
  await Promise.all(tables.map((t) => t.drop()));
});

const registration = (cellId: string, tableName = `${cellId}-table`, weight = 1): CellRegistration => ({
  cellId,
  weight,
  apiFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:item-master-dev-${cellId}-api`,
  tableName,
});

/** A control plane as three cells' deploys leave it, with each cell's table. */
async function deployed(cellIds = ['cell-1', 'cell-2', 'cell-3']) {
  const control = await table('control');
  const store = new ControlPlaneStore(control.client, control.tableName);
  const deploy = new DeployTimeCalls(control.client, control.tableName);
  expect(await deploy.seed(cellIds)).toBe(true);
  const cellTables: Record<string, Table> = {};
  for (const cellId of cellIds) {
    cellTables[cellId] = await table(cellId);
    await deploy.register(registration(cellId, cellTables[cellId]!.tableName));
  }
  const operations = new CellOperations({ store, cellData: new CellData(control.doc), by: 'test', fenceWaitMs: 0 });
  return { store, deploy, operations, cellTables };
}

describe('the control-plane store', () => {
  it('seeds version 1 as an even split once; a later seed with more cells moves nothing', async () => {
    const control = await table('control');
    const store = new ControlPlaneStore(control.client, control.tableName);
    const deploy = new DeployTimeCalls(control.client, control.tableName);
    expect(await store.latestVersion()).toBeUndefined();
    expect(await deploy.seed(['cell-1', 'cell-2'])).toBe(true);
    expect(await deploy.seed(['cell-1', 'cell-2', 'cell-3'])).toBe(false);
    const version = await store.latestVersion();
    expect(version).toMatchObject({ version: 1, overrides: {}, by: 'deploy' });
    expect(version?.map).toEqual(evenSplit(['cell-1', 'cell-2']));
  });

  it('registers a cell as active; a redeploy updates what the deploy owns and keeps an operator-set status', async () => {
    const control = await table('control');
    const store = new ControlPlaneStore(control.client, control.tableName);
    const deploy = new DeployTimeCalls(control.client, control.tableName);
    await deploy.register(registration('cell-1'));
    expect(await store.getCell('cell-1')).toMatchObject({ status: 'active', weight: 1, tableName: 'cell-1-table' });
    await store.setStatus('cell-1', 'draining');
    await deploy.register(registration('cell-1', 'cell-1-table-v2', 3));
    expect(await store.getCell('cell-1')).toMatchObject({ status: 'draining', weight: 3, tableName: 'cell-1-table-v2' });
    await deploy.deregister('cell-1');
    expect(await store.listCells()).toEqual([]);
    await expect(store.setStatus('cell-1', 'active')).rejects.toThrow(UnknownCellError);
  });

  it('adding a cell changes no mapping', async () => {
    const { store, deploy } = await deployed();
    const before = await store.latestVersion();
    await deploy.register(registration('cell-4'));
    const after = await store.latestVersion();
    expect(after).toEqual(before);
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64 }), (tenantId) => {
        expect(routeTenant(after!.map, after!.overrides, tenantId)).toEqual(routeTenant(before!.map, before!.overrides, tenantId));
      }),
    );
  });

  it('of two writers racing from one version, exactly one wins; the other is told and nothing is lost', async () => {
    const { store, operations } = await deployed();
    const results = await Promise.allSettled([operations.pin('tenant-a', 'cell-1'), operations.pin('tenant-b', 'cell-2')]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(MapConflictError);
    expect((lost[0]!.reason as Error).message).toBe(
      'the map changed while this change was being made: version 2 was written by another writer. Nothing was written; run the command again.',
    );

    const versions = await store.listVersions();
    expect(versions.map((v) => v.version)).toEqual([2, 1]);
    expect(Object.keys(versions[0]!.overrides)).toHaveLength(1);
    // The loser tries again from the new version, and both pins stand.
    const loser = won[0] === results[0] ? ['tenant-b', 'cell-2'] : ['tenant-a', 'cell-1'];
    await operations.pin(loser[0]!, loser[1]!);
    expect((await store.latestVersion())?.overrides).toEqual({ 'tenant-a': 'cell-1', 'tenant-b': 'cell-2' });
    expect((await store.listVersions()).map((v) => v.version)).toEqual([3, 2, 1]);
  });

  it('refuses a version that names a cell that is not registered', async () => {
    const { store } = await deployed(['cell-1']);
    const current = (await store.latestVersion())!;
    const registry = await store.listCells();
    await expect(store.writeVersion(current.version, { ...current, overrides: { t: 'cell-9', u: 'cell-8', v: 'cell-1' } }, registry)).rejects.toThrow(
      new UnknownCellError('cell-9, cell-8'),
    );
    await expect(store.writeVersion(current.version, { ...current, map: evenSplit(['cell-1', 'cell-2']) }, registry)).rejects.toThrow(/cell-2/);
    expect((await store.latestVersion())?.version).toBe(1);
  });

  it('refuses, writing nothing, a version too large for one item, and says what to do', async () => {
    const { store } = await deployed(['cell-1']);
    const current = (await store.latestVersion())!;
    const overrides = Object.fromEntries(Array.from({ length: 12_000 }, (_, n) => [`tenant-with-a-long-name-${n}`, 'cell-1']));
    const refused = await store.writeVersion(current.version, { ...current, overrides }, await store.listCells()).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ControlPlaneError);
    expect((refused as Error).message).toMatch(
      /^map version 2 would be \d+ KB, over the 380 KB a version item may hold; it has 12000 overrides: unpin tenants that no longer need it$/,
    );
    const kilobytes = Number(/be (\d+) KB/.exec((refused as Error).message)![1]);
    expect(kilobytes).toBeGreaterThan(380);
    expect(kilobytes).toBeLessThan(1_000);
    expect((await store.latestVersion())?.version).toBe(1);
    // Well under the limit is written.
    const fewer = Object.fromEntries(Object.entries(overrides).slice(0, 1000));
    expect((await store.writeVersion(current.version, { ...current, overrides: fewer }, await store.listCells())).version).toBe(2);
  });

  it('writes a version only after the newest: one based on an older version is a conflict', async () => {
    const { store } = await deployed(['cell-1']);
    const first = (await store.readVersion(1))!;
    expect(first).toMatchObject({ version: 1, map: evenSplit(['cell-1']) });
    expect(await store.readVersion(99)).toBeUndefined();
    const registry = await store.listCells();
    await store.writeVersion(1, { ...first, overrides: { a: 'cell-1' } }, registry);
    await expect(store.writeVersion(1, { ...first, overrides: { b: 'cell-1' } }, registry)).rejects.toThrow(new MapConflictError(1));
    expect((await store.readVersion(2))?.overrides).toEqual({ a: 'cell-1' });
  });

  it('passes on what is not a refused condition as it is: a missing table is not an unknown cell or a conflict', async () => {
    const control = await table('control');
    const store = new ControlPlaneStore(control.client, `${control.tableName}-missing`);
    const failure = { name: 'ResourceNotFoundException' };
    await expect(store.setStatus('cell-1', 'draining')).rejects.toMatchObject(failure);
    const registry = [{ ...registration('cell-1'), status: 'active' as const }];
    await expect(store.writeVersion(0, { map: evenSplit(['cell-1']), overrides: {}, change: 'test', by: 'test' }, registry)).rejects.toMatchObject(
      failure,
    );
  });

  it("lists every bound client, or one tenant's", async () => {
    const control = await table('control');
    const store = new ControlPlaneStore(control.client, control.tableName);
    const binding = (clientId: string, tenantId: string) => ({
      clientId,
      tenantId,
      scopes: ['items/read'],
      createdAt: '2026-01-01T00:00:00.000Z',
      by: 'test',
    });
    await store.bindClient(binding('client-1', 'tenant-a'));
    await store.bindClient(binding('client-2', 'tenant-b'));
    await expect(store.bindClient(binding('client-1', 'tenant-b'))).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect((await store.listClients()).map((c) => c.clientId).sort()).toEqual(['client-1', 'client-2']);
    expect(await store.listClients('tenant-b')).toEqual([binding('client-2', 'tenant-b')]);
    await store.unbindClient('client-2');
    expect(await store.listClients('tenant-b')).toEqual([]);
  });

  it('every version maps every bucket to exactly one registered cell, whatever the operators do', async () => {
    const { store, deploy, operations } = await deployed(['cell-1', 'cell-2']);
    // Cells that register later have tables too, so that a pin can check them for data.
    const later = { 'cell-3': (await table('cell-3')).tableName, 'cell-4': (await table('cell-4')).tableName };
    const command = fc.oneof(
      fc.record({
        op: fc.constant('pin' as const),
        tenant: fc.constantFrom('t1', 't2', 't3'),
        cell: fc.constantFrom('cell-1', 'cell-2', 'cell-3', 'cell-x'),
      }),
      fc.record({ op: fc.constant('unpin' as const), tenant: fc.constantFrom('t1', 't2', 't3') }),
      fc.record({ op: fc.constant('register' as const), cell: fc.constantFrom('cell-3', 'cell-4') }),
      fc.record({ op: fc.constantFrom('draining', 'active', 'inactive'), cell: fc.constantFrom('cell-1', 'cell-2', 'cell-3') }),
    );
    let pinsMade = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 6 }), async (commands) => {
        for (const c of commands) {
          const registry = await store.listCells();
          if (c.op === 'pin' && registry.some((cell) => cell.cellId === c.cell && cell.status === 'active')) {
            // These tenants have no data anywhere: a pin to a registered, active cell goes through.
            await operations.pin(c.tenant, c.cell);
            expect(await operations.route(c.tenant)).toMatchObject({ cellId: c.cell, reason: 'override' });
            pinsMade += 1;
            continue;
          }
          try {
            if (c.op === 'pin') await operations.pin(c.tenant, c.cell);
            else if (c.op === 'unpin') await operations.unpin(c.tenant);
            else if (c.op === 'register') await deploy.register(registration(c.cell, later[c.cell]));
            else await store.setStatus(c.cell, c.op);
          } catch (error) {
            // Refusals are fine (unknown or inactive cell, not pinned); anything else is not.
            if (!(error instanceof OperationError || error instanceof UnknownCellError)) throw error;
          }
          const registered = new Set((await store.listCells()).map((cell) => cell.cellId));
          const version = (await store.latestVersion())!;
          expect(version.map).toHaveLength(16_384);
          expect([...version.map, ...Object.values(version.overrides)].every((cellId) => registered.has(cellId))).toBe(true);
        }
      }),
      // First, a run known to make a pin (cell-1 is active at the start), whatever the random runs do after it.
      { numRuns: 15, examples: [[[{ op: 'pin', tenant: 't1', cell: 'cell-1' }]]] },
    );
    // The property held while pins were being made, not only refused.
    expect(pinsMade).toBeGreaterThan(0);
  });
});

describe('pin and unpin', () => {
  let env: Awaited<ReturnType<typeof deployed>>;
  beforeAll(async () => {
    env = await deployed();
  });
  afterEach(async () => {
    for (const cellId of ['cell-1', 'cell-2']) await env.store.setStatus(cellId, 'active');
  });

  const putItem = (cellId: string, tenantId: string) =>
    env.cellTables[cellId]!.doc.send(
      new PutCommand({ TableName: env.cellTables[cellId]!.tableName, Item: { pk: `TENANT#${tenantId}`, sk: 'ITEM#x' } }),
    );

  it('pins a tenant without data anywhere, and route says why', async () => {
    const before = await env.operations.route('fresh');
    const target = before.cellId === 'cell-1' ? 'cell-2' : 'cell-1';
    const { version } = await env.operations.pin('fresh', target);
    expect(version?.change).toBe(`pin fresh to ${target}`);
    expect(await env.operations.route('fresh')).toMatchObject({ cellId: target, reason: 'override', status: 'active' });
    // Pinning again to the same cell writes nothing.
    expect((await env.operations.pin('fresh', target)).version).toBeUndefined();
    const { route } = await env.operations.unpin('fresh');
    expect(route).toMatchObject({ cellId: before.cellId, reason: 'map' });
  });

  it('refuses to pin a tenant away from the cell that holds its data, and allows pinning it where the data is', async () => {
    const home = (await env.operations.route('has-data')).cellId;
    await putItem(home, 'has-data');
    const elsewhere = home === 'cell-1' ? 'cell-2' : 'cell-1';
    await expect(env.operations.pin('has-data', elsewhere)).rejects.toThrow(
      new OperationError(
        `has-data already has data in ${home}: routing it to ${elsewhere} would hide that data. Move it with its data instead: npm run cells -- move tenant has-data ${elsewhere}`,
      ),
    );
    await env.operations.pin('has-data', home);
    expect((await env.operations.route('has-data')).reason).toBe('override');
    // Data in two other cells: both named.
    await putItem('cell-2', 'two-homes');
    await putItem('cell-3', 'two-homes');
    await expect(env.operations.pin('two-homes', 'cell-1')).rejects.toThrow('two-homes already has data in cell-2, cell-3: routing it to cell-1');
  });

  it('refuses to unpin a tenant whose data is in the cell it is pinned to', async () => {
    const home = (await env.operations.route('pinned-data')).cellId;
    const pinnedTo = home === 'cell-1' ? 'cell-2' : 'cell-1';
    await env.operations.pin('pinned-data', pinnedTo);
    await putItem(pinnedTo, 'pinned-data');
    await expect(env.operations.unpin('pinned-data')).rejects.toThrow(`already has data in ${pinnedTo}`);
    await expect(env.operations.unpin('never-pinned')).rejects.toThrow('never-pinned is not pinned');
  });

  it('refuses a cell that is not active or not registered', async () => {
    await env.store.setStatus('cell-2', 'draining');
    await expect(env.operations.pin('t', 'cell-2')).rejects.toThrow('cell-2 is draining');
    await expect(env.operations.pin('t', 'cell-9')).rejects.toThrow(UnknownCellError);
  });

  const ownershipOf = async (cellId: string, cellTables = env.cellTables) =>
    (await cellTables[cellId]!.doc.send(new GetCommand({ TableName: cellTables[cellId]!.tableName, Key: OWNERSHIP_KEY }))).Item;

  it('fences every cell with the next version before the map changes, so no cell serves the tenant by the version before', async () => {
    const target = (await env.operations.route('fenced')).cellId === 'cell-1' ? 'cell-2' : 'cell-1';
    const order: string[] = [];
    const access = new CellData(env.cellTables['cell-1']!.doc);
    const others = ['cell-1', 'cell-2', 'cell-3'].filter((cellId) => cellId !== target).map((cellId) => `data in ${cellId}?`);
    const operations = new CellOperations({
      store: env.store,
      cellData: {
        hasData: (cell, tenantId) => {
          order.push(`data in ${cell.cellId}?`);
          return access.hasData(cell, tenantId);
        },
        writeOwnership: async (cell, record, replacing) => {
          order.push(`fence ${cell.cellId} at ${record.epoch}`);
          return access.writeOwnership(cell, record, replacing);
        },
        tenantsIn: (cell, bucket) => access.tenantsIn(cell, bucket),
      },
      by: 'test',
      // The default wait, seen without spending it.
      sleep: async (ms) => order.push(`wait ${ms} ms`),
    });
    const before = (await env.store.latestVersion())!.version;
    const { version } = await operations.pin('fenced', target);
    expect(version?.version).toBe(before + 1);
    // Data checked, every cell fenced, the leases waited out, the data checked again, then the map written.
    expect(order).toEqual([
      ...others,
      ...['cell-1', 'cell-2', 'cell-3'].map((cellId) => `fence ${cellId} at ${before + 1}`),
      `wait ${FENCE_WAIT_MS} ms`,
      ...others,
    ]);
    for (const cellId of ['cell-1', 'cell-2', 'cell-3']) {
      expect(await ownershipOf(cellId)).toMatchObject({ epoch: before + 1, overrides: expect.objectContaining({ fenced: target }) });
    }
  });

  it('gives the cells the current version back when data lands in the old cell before the fence holds', async () => {
    const home = (await env.operations.route('racing')).cellId;
    const target = home === 'cell-1' ? 'cell-2' : 'cell-1';
    const access = new CellData(env.cellTables['cell-1']!.doc);
    let checks = 0;
    const operations = new CellOperations({
      store: env.store,
      cellData: {
        // The first check finds nothing; a write lands in the home cell before the fence holds; the second finds it.
        hasData: async (cell, tenantId) => {
          if (cell.cellId === home && checks++ === 0) {
            await putItem(home, 'racing');
            return false;
          }
          return access.hasData(cell, tenantId);
        },
        writeOwnership: (cell, record, replacing) => access.writeOwnership(cell, record, replacing),
        tenantsIn: (cell, bucket) => access.tenantsIn(cell, bucket),
      },
      by: 'test',
      fenceWaitMs: 0,
    });
    const before = (await env.store.latestVersion())!;
    await expect(operations.pin('racing', target)).rejects.toThrow(`racing already has data in ${home}`);
    expect((await env.store.latestVersion())!.version).toBe(before.version);
    for (const cellId of ['cell-1', 'cell-2', 'cell-3']) {
      expect(await ownershipOf(cellId)).toMatchObject({ epoch: before.version, overrides: before.overrides });
    }
  });

  it('refuses, changing nothing, when a cell holds a newer record (another change under way)', async () => {
    const { store, operations, cellTables } = await deployed(['cell-1', 'cell-2']);
    await cellTables['cell-2']!.doc.send(new PutCommand({ TableName: cellTables['cell-2']!.tableName, Item: { ...OWNERSHIP_KEY, epoch: 99 } }));
    await expect(operations.pin('t', 'cell-1')).rejects.toThrow(MapConflictError);
    expect((await store.latestVersion())?.version).toBe(1);
    expect(await ownershipOf('cell-1', cellTables)).toMatchObject({ epoch: 1 });
  });

  it('takes over a fence an operation left when it died, and only one older than twice the fence wait', async () => {
    const { store, operations, cellTables } = await deployed(['cell-1', 'cell-2']);
    const fence = (writtenAt: number) =>
      cellTables['cell-1']!.doc.send(
        new PutCommand({ TableName: cellTables['cell-1']!.tableName, Item: { ...OWNERSHIP_KEY, epoch: 2, writtenBy: 'dead', writtenAt } }),
      );
    // A live operation's fence (written just now) stands: this change is told to run again.
    await fence(Date.now());
    await expect(operations.pin('t-revived', 'cell-2')).rejects.toThrow(MapConflictError);
    // Left by an operation that died mid-way: taken over, and the change goes on.
    await fence(Date.now() - 2 * FENCE_WAIT_MS - 1_000);
    expect((await operations.pin('t-revived', 'cell-2')).version?.version).toBe(2);
    expect((await store.latestVersion())?.overrides).toEqual({ 't-revived': 'cell-2' });
    expect(await ownershipOf('cell-1', cellTables)).toMatchObject({ epoch: 2, overrides: { 't-revived': 'cell-2' } });
  });

  it('refuses, changing nothing, when a cell table cannot be read', async () => {
    const { store, deploy, operations } = await deployed(['cell-1', 'cell-2']);
    await deploy.register(registration('cell-2', 'no-such-table'));
    await expect(operations.pin('t', 'cell-1')).rejects.toThrow(/cannot tell whether t has data in cell-2.*nothing was changed/);
    expect((await store.latestVersion())?.version).toBe(1);
  });
});

describe('what the operations show', () => {
  it('lists the cells in order with their buckets and pins, and the cells the map still names without a registration', async () => {
    const { store, deploy, operations } = await deployed();
    const [one, two] = ['cell-1', 'cell-2'].map(
      (cellId) =>
        Array.from({ length: 100 }, (_, n) => `t-${n}`).find((t) => routeTenant(evenSplit(['cell-1', 'cell-2', 'cell-3']), {}, t).cellId !== cellId)!,
    );
    await operations.pin(one!, 'cell-1');
    await operations.pin(two!, 'cell-2');
    await operations.pin(`${two!}-again`, 'cell-2');
    await deploy.deregister('cell-3');
    await store.setStatus('cell-2', 'draining');
    const listed = await operations.list();
    expect(listed.version).toBe(4);
    expect(listed.cells.map((cell) => [cell.cellId, cell.status, cell.buckets, cell.pinnedTenants])).toEqual([
      ['cell-1', 'active', 5462, 1],
      ['cell-2', 'draining', 5461, 2],
    ]);
    expect(listed.unregistered).toEqual([{ cellId: 'cell-3', buckets: 5461 }]);
    // Where a tenant goes, and the status of the cell it goes to.
    const byMap = (cellId: string) =>
      Array.from({ length: 100 }, (_, n) => `r-${n}`).find((t) => routeTenant(evenSplit(['cell-1', 'cell-2', 'cell-3']), {}, t).cellId === cellId)!;
    expect(await operations.route(byMap('cell-1'))).toMatchObject({ cellId: 'cell-1', reason: 'map', status: 'active', version: 4 });
    expect(await operations.route(byMap('cell-2'))).toMatchObject({ cellId: 'cell-2', status: 'draining' });
    expect(await operations.route(byMap('cell-3'))).toMatchObject({ cellId: 'cell-3', status: 'unregistered' });
  });

  it('pins a tenant to the cell its bucket already maps it to: a pin of its own, kept when the map changes', async () => {
    const { operations } = await deployed(['cell-1', 'cell-2']);
    const route = await operations.route('stays');
    const { version } = await operations.pin('stays', route.cellId);
    expect(version).toMatchObject({ version: 2, overrides: { stays: route.cellId } });
    expect(await operations.route('stays')).toMatchObject({ cellId: route.cellId, reason: 'override' });
    // Pinned to one cell, then to another: a change, not a pin already there.
    const other = route.cellId === 'cell-1' ? 'cell-2' : 'cell-1';
    expect((await operations.pin('stays', other)).version).toMatchObject({ version: 3, overrides: { stays: other } });
  });

  it('tells what each map version changed: buckets by source and target as ranges, pins set and lifted', async () => {
    const { store, operations } = await deployed(['cell-1', 'cell-2']);
    expect(await operations.versionDiff(1)).toEqual({
      version: 1,
      change: expect.any(String),
      by: 'deploy',
      first: true,
      buckets: [],
      pins: [],
    });
    await operations.pin('b-tenant', 'cell-2');
    await operations.pin('a-tenant', 'cell-1');
    await operations.unpin('b-tenant');
    const current = (await store.latestVersion())!;
    const map = [...current.map];
    for (const bucket of [10, 11, 12, 20]) map[bucket] = 'cell-2';
    await store.writeVersion(
      current.version,
      { map, overrides: { 'a-tenant': 'cell-2', '0-tenant': 'cell-1' }, change: 'by hand', by: 'test' },
      await store.listCells(),
    );
    expect(await operations.versionDiff(2)).toMatchObject({
      version: 2,
      change: 'pin b-tenant to cell-2',
      by: 'test',
      createdAt: expect.any(String),
      first: false,
      buckets: [],
      pins: [{ tenantId: 'b-tenant', to: 'cell-2' }],
    });
    const unpinned = await operations.versionDiff(4);
    expect(unpinned.pins).toStrictEqual([{ tenantId: 'b-tenant', from: 'cell-2' }]);
    expect(unpinned.change).toMatch(/^unpin b-tenant \(back to cell-[12] by bucket \d+\)$/);
    expect((await operations.versionDiff(2)).pins).toStrictEqual([{ tenantId: 'b-tenant', to: 'cell-2' }]);
    const byHand = await operations.versionDiff(5);
    expect(byHand).toEqual({
      version: 5,
      change: 'by hand',
      by: 'test',
      first: false,
      buckets: [
        {
          from: 'cell-1',
          to: 'cell-2',
          count: 4,
          ranges: [
            [10, 12],
            [20, 20],
          ],
        },
      ],
      pins: [
        { tenantId: '0-tenant', to: 'cell-1' },
        { tenantId: 'a-tenant', from: 'cell-1', to: 'cell-2' },
      ],
    });
    await expect(operations.versionDiff(6)).rejects.toThrow(new NotFoundError('no map version 6'));
  });

  it('says what to do when the control plane has no map yet', async () => {
    const control = await table('control');
    const operations = new CellOperations({
      store: new ControlPlaneStore(control.client, control.tableName),
      cellData: new CellData(control.doc),
      by: 'test',
    });
    const refusal = new OperationError('the control plane has no bucket map yet: deploy the control-plane stack (or start npm start) first');
    await expect(operations.list()).rejects.toThrow(refusal);
    await expect(operations.route('t')).rejects.toThrow(refusal);
    await expect(operations.plan()).rejects.toThrow(refusal);
  });
});

describe('a fence that cannot be written', () => {
  it('gives the cells already fenced their record back, and says what failed, when a cell table cannot be written', async () => {
    const { store, deploy, operations, cellTables } = await deployed(['cell-1', 'cell-2', 'cell-3']);
    // cell-3's table is gone: the data check does not read it (the tenant goes there), the fence fails on it.
    await deploy.register(registration('cell-3', 'no-such-table'));
    const failure = await operations.pin('t', 'cell-3').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OperationError);
    expect((failure as Error).message).toMatch(/^could not fence the cells for pin t to cell-3 \(.+\); nothing was changed$/);
    expect((await store.latestVersion())?.version).toBe(1);
    for (const cellId of ['cell-1', 'cell-2']) {
      const { Item } = await cellTables[cellId]!.doc.send(new GetCommand({ TableName: cellTables[cellId]!.tableName, Key: OWNERSHIP_KEY }));
      expect(Item).toMatchObject({ epoch: 1, overrides: {} });
    }
  });
});

describe('tenants', () => {
  it("lists a cell's directory over a range of buckets, a few Queries at a time, in bucket order", async () => {
    const { store } = await deployed(['cell-1']);
    let inFlight = 0;
    let most = 0;
    const counting = new CellOperations({
      store,
      cellData: {
        hasData: async () => false,
        writeOwnership: async () => true,
        tenantsIn: async (_cell, bucket) => {
          most = Math.max(most, ++inFlight);
          await new Promise((resolve) => setTimeout(resolve, 1));
          inFlight--;
          return bucket === 7 ? ['b', 'a'] : [];
        },
      },
      by: 'test',
    });
    const found = await counting.tenants(
      'cell-1',
      Array.from({ length: 100 }, (_, i) => i),
    );
    expect(found).toHaveLength(100);
    expect(found[7]).toEqual({ bucket: 7, tenants: ['a', 'b'] });
    expect(most).toBeLessThanOrEqual(16);
    await expect(counting.tenants('cell-9', [1])).rejects.toThrow(UnknownCellError);
  });
});
