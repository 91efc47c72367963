import { setTimeout as sleep } from 'node:timers/promises';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CellData } from '../../control-plane/cell-data.ts';
import { PlanRunner, type ApplyProgress, type SavedPlan } from '../../control-plane/apply.ts';
import { FINISHED, type MoveRecord } from '../../control-plane/move-record.ts';
import type { MoveEngine } from '../../control-plane/move-engine.ts';
import { CellOperations } from '../../control-plane/operations.ts';
import { summarizeMoves } from '../../control-plane/plan.ts';
import { bucketCounts, bucketOf, routeTenant } from '../../routing/routing.ts';
import { CELL_RECORDS_PK, directoryKey, itemKey, OWNERSHIP_LEASE_MS } from '../../layers/shared/src/contracts/cell-table.ts';
import { eventually } from '../support/eventually.ts';
import { cellWorld, type Answer, type CellWorld } from '../support/moving.ts';

let world: CellWorld;
beforeAll(async () => {
  world = await cellWorld(inject('dynamoEndpoint'));
});
afterAll(async () => world?.drop());

const widget = (n: number) => ({ title: `Widget ${n}`, price: { amount: n, currency: 'EUR' }, stock: 1_000_000 });
const order = (itemId: string) => ({ customerId: 'c-1', lines: [{ itemId, quantity: 1 }], payment: { token: 'tok_ok' } });

/** Tenants the seed map gives to a cell, by name, deterministic. */
function tenantsIn(cellId: string, count: number, prefix = 'tenant'): string[] {
  const found: string[] = [];
  for (let i = 0; found.length < count; i += 1) {
    const tenantId = `${prefix}-${i}`;
    if (routeTenant(mapNow!.map, mapNow!.overrides, tenantId).cellId === cellId) found.push(tenantId);
  }
  return found;
}
let mapNow: Awaited<ReturnType<CellWorld['store']['latestVersion']>>;

async function seed(tenantId: string, items: number) {
  const router = world.router();
  for (let i = 0; i < items; i += 1) {
    expect((await router.request('PUT', `/tenants/${tenantId}/items/i-${i}`, { body: widget(i) })).status).toBe(201);
  }
}

/** What a cell holds of a tenant: its records and its directory entry. */
async function holding(cellId: string, tenantId: string, w: CellWorld = world) {
  const { table } = w.cells[cellId]!;
  const { Items = [] } = await table.doc.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `TENANT#${tenantId}` },
      ConsistentRead: true,
    }),
  );
  const { Item: entry } = await table.doc.send(
    new GetCommand({ TableName: table.tableName, Key: directoryKey(bucketOf(tenantId), tenantId), ConsistentRead: true }),
  );
  return { records: Items, entry };
}

async function markers(cellId: string) {
  const { table } = world.cells[cellId]!;
  const { Items = [] } = await table.doc.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :move)',
      ExpressionAttributeValues: { ':pk': CELL_RECORDS_PK, ':move': 'MOVE#' },
      ConsistentRead: true,
    }),
  );
  return Items;
}

beforeAll(async () => {
  mapNow = await world.store.latestVersion();
});

/** The cells' data access of a process that dies at its `crashAt`-th call into the cells' tables. */
function dyingAt(crashAt: number): CellData {
  let calls = 0;
  return new Proxy(world.cellData, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls += 1;
        if (calls === crashAt) throw new Error(`crash at call ${crashAt}`);
        return value.apply(target, args);
      };
    },
  });
}

/** Every write the load was acknowledged is in the cell, at its latest version; so is every order placed. */
async function expectEveryWriteIn(cellId: string, tenantId: string, load: Pick<ReturnType<typeof traffic>, 'acknowledged' | 'ambiguous' | 'orders'>) {
  const held = new Map((await holding(cellId, tenantId)).records.map((r) => [String(r.sk), r]));
  for (const [itemId, { version, live }] of load.acknowledged) {
    const stored = held.get(`ITEM#${itemId}`);
    expect(stored, itemId).toBeDefined();
    if (load.ambiguous.has(itemId)) expect(stored!.version).toBeGreaterThanOrEqual(version);
    else expect({ itemId, version: stored!.version, live: stored!.deletedAt === undefined }).toEqual({ itemId, version, live });
  }
  for (const orderId of load.orders) expect(held.get(`ORDER#${orderId}`), orderId).toBeDefined();
}

/**
 * Three writers (PUT, conditional PATCH and DELETE, orders) and two readers
 * on one tenant through the routers, until stopped: what each was answered,
 * and per item the highest version a write was acknowledged at.
 */
function traffic(tenantId: string, readOnly: readonly string[], phase = '') {
  let stop = false;
  const answers: Array<Answer & { op: string; itemId?: string }> = [];
  /** Per item: the highest version a write was acknowledged at, and whether it was then live. */
  const acknowledged = new Map<string, { version: number; live: boolean }>();
  const ambiguous = new Set<string>();
  const orders: string[] = [];
  const ack = (itemId: string, version: number, live: boolean) => {
    const before = acknowledged.get(itemId);
    if (!before || version > before.version) acknowledged.set(itemId, { version, live });
  };
  const writer = async (seedNo: number) => {
    const r = world.router();
    for (let n = 0; !stop; n += 1) {
      const itemId = `i-${(seedNo * 7 + n) % 24}`;
      const op = ['PUT', 'PATCH', 'DELETE', 'ORDER'][(seedNo + n) % 4]!;
      if (op === 'PUT') {
        const a = await r.request('PUT', `/tenants/${tenantId}/items/${itemId}`, { body: widget(n) });
        answers.push({ ...a, op, itemId });
        if (a.status < 300) ack(itemId, a.body.version, true);
        else if (a.status >= 500) ambiguous.add(itemId);
      } else if (op === 'PATCH') {
        const read = await r.request('GET', `/tenants/${tenantId}/items/${itemId}`);
        answers.push({ ...read, op: 'GET' });
        if (read.status !== 200) continue;
        const a = await r.request('PATCH', `/tenants/${tenantId}/items/${itemId}`, {
          body: { title: `patched ${n}` },
          headers: { 'if-match': `"${read.body.version}"` },
        });
        answers.push({ ...a, op, itemId });
        if (a.status === 200) ack(itemId, a.body.version, true);
        else if (a.status >= 500) ambiguous.add(itemId);
      } else if (op === 'DELETE') {
        const read = await r.request('GET', `/tenants/${tenantId}/items/${itemId}`);
        answers.push({ ...read, op: 'GET' });
        if (read.status !== 200) continue;
        const a = await r.request('DELETE', `/tenants/${tenantId}/items/${itemId}`, { headers: { 'if-match': `"${read.body.version}"` } });
        answers.push({ ...a, op, itemId });
        if (a.status === 204) ack(itemId, read.body.version + 1, false);
        else if (a.status >= 500) ambiguous.add(itemId);
      } else {
        const key = `k${phase}-${seedNo}-${n}`;
        const a = await r.request('POST', `/tenants/${tenantId}/orders`, { body: order('r-0'), headers: { 'idempotency-key': key } });
        answers.push({ ...a, op });
        if (a.status === 202) orders.push(a.body.orderId);
      }
    }
  };
  const reader = async (seedNo: number) => {
    const r = world.router();
    for (let n = 0; !stop; n += 1) {
      const a = await r.request('GET', `/tenants/${tenantId}/items/${readOnly[(seedNo + n) % readOnly.length]}`);
      answers.push({ ...a, op: 'READ' });
      const list = await r.request('GET', `/tenants/${tenantId}/items?limit=100`);
      answers.push({ ...list, op: 'LIST' });
    }
  };
  const load = [writer(1), writer(2), writer(3), reader(1), reader(2)];
  return {
    answers,
    acknowledged,
    ambiguous,
    orders,
    /** Stops the load a little after the move's end, and waits for every request in flight. */
    async stop() {
      await sleep(300);
      stop = true;
      await Promise.all(load);
    },
  };
}

describe('moving a tenant while it serves', () => {
  it("loses no acknowledged write, refuses writes only in the fenced window, serves every read, ends in the target, and a stale router's write after it lands there too", async () => {
    const [tenantId] = tenantsIn('cell-1', 1, 'busy');
    await seed(tenantId!, 20);
    const readOnly = Array.from({ length: 10 }, (_, i) => `r-${i}`);
    const router = world.router();
    for (const id of readOnly) expect((await router.request('PUT', `/tenants/${tenantId}/items/${id}`, { body: widget(1) })).status).toBe(201);

    // A router whose map is never refreshed by itself: after the flip it still sends the tenant to cell-1.
    const stale = world.router();
    await stale.refresh();
    const move = await world.engine().create({ kind: 'tenant', tenantId: tenantId!, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
    const load = traffic(tenantId!, readOnly);
    let done: MoveRecord;
    try {
      done = await world.run(move.moveId);
    } finally {
      await load.stop();
    }
    const { answers } = load;

    expect(done).toMatchObject({ state: 'done' });
    const fenceAt = done.fenceAt!;
    const flippedAt = done.flippedAt!;
    // Every read was served, and never a 404 for an item that existed.
    for (const a of answers.filter((x) => x.op === 'READ' || x.op === 'LIST')) expect(a.status).toBe(200);
    // Refusals: only writes, only 503 tenant_moving with Retry-After, only inside the fenced window (and the source's re-read after the flip).
    const refused = answers.filter((a) => a.status >= 500);
    for (const a of refused) {
      expect(a.op).not.toMatch(/READ|LIST|GET/);
      expect(a).toMatchObject({ status: 503, body: { error: { code: 'tenant_moving' } }, headers: { 'retry-after': '1' } });
      expect(a.endedAt).toBeGreaterThanOrEqual(fenceAt);
      expect(a.startedAt).toBeLessThanOrEqual(flippedAt + OWNERSHIP_LEASE_MS);
    }
    expect(answers.filter((a) => a.status < 300 && a.op !== 'READ' && a.op !== 'LIST' && a.op !== 'GET').length).toBeGreaterThan(20);
    // Every acknowledged write is in the target at its latest version; the source holds nothing.
    await expectEveryWriteIn('cell-2', tenantId!, load);
    expect((await holding('cell-1', tenantId!)).records).toEqual([]);
    expect((await holding('cell-1', tenantId!)).entry).toBeUndefined();
    expect((await holding('cell-2', tenantId!)).entry).toBeDefined();
    expect([...(await markers('cell-1')), ...(await markers('cell-2'))]).toEqual([]);
    // From now on the target answers, for every router.
    const after = await world.router().request('GET', `/tenants/${tenantId}/items/r-1`);
    expect(after).toMatchObject({ status: 200, cellId: 'cell-2' });
    // The stale router's write, right after the move: refused by cell-1 (421), re-read, served by cell-2 only.
    const late = await stale.request('PUT', `/tenants/${tenantId}/items/late`, { body: widget(9) });
    expect(late).toMatchObject({ status: 201, cellId: 'cell-2' });
    expect((await holding('cell-1', tenantId!)).records).toEqual([]);
  });

  it('lets a running saga finish before the flip, refuses new orders inside the fence, and replays an Idempotency-Key in the target', async () => {
    const [tenantId] = tenantsIn('cell-2', 1, 'orders');
    await seed(tenantId!, 1);
    const router = world.router();
    let release!: () => void;
    world.saga.gate = new Promise<void>((resolve) => (release = resolve));
    const placed = await router.request('POST', `/tenants/${tenantId}/orders`, { body: order('i-0'), headers: { 'idempotency-key': 'before-move' } });
    expect(placed).toMatchObject({ status: 202, body: { status: 'PENDING' } });

    const move = await world.engine().create({ kind: 'tenant', tenantId: tenantId!, to: 'cell-1' }, { by: 'test', graceSeconds: 0 });
    const running = world.run(move.moveId);
    // Inside the fence (the saga holds it open): a new order is refused with Retry-After, a read is served.
    await eventually(async () => {
      const now = await world.moves.get(move.moveId);
      expect(now?.fenceAt !== undefined && Date.now() > now.fenceAt, 'the fence holds').toBe(true);
    });
    const refused = await router.request('POST', `/tenants/${tenantId}/orders`, {
      body: order('i-0'),
      headers: { 'idempotency-key': 'inside-fence' },
    });
    expect(refused).toMatchObject({ status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'tenant_moving' } } });
    expect((await router.request('GET', `/tenants/${tenantId}/orders/${placed.body.orderId}`)).status).toBe(200);
    release();
    const done = await running;
    expect(done.state).toBe('done');

    const replay = await router.request('POST', `/tenants/${tenantId}/orders`, { body: order('i-0'), headers: { 'idempotency-key': 'before-move' } });
    expect(replay).toMatchObject({
      status: 202,
      cellId: 'cell-1',
      body: { orderId: placed.body.orderId, status: 'CONFIRMED' },
      headers: { 'idempotent-replayed': 'true' },
    });
    expect((await router.request('GET', `/tenants/${tenantId}/orders/${placed.body.orderId}`)).body.status).toBe('CONFIRMED');
  });
});

describe('a revert while the tenant serves', () => {
  it('takes the tenant back with the same fence: every write acknowledged on the way out and on the way back is in the source at the end', async () => {
    const [tenantId] = tenantsIn('cell-1', 1, 'regret');
    await seed(tenantId!, 20);
    const readOnly = Array.from({ length: 4 }, (_, i) => `r-${i}`);
    const router = world.router();
    for (const id of readOnly) expect((await router.request('PUT', `/tenants/${tenantId}/items/${id}`, { body: widget(1) })).status).toBe(201);

    // Out, under load, with a grace period long enough to change one's mind.
    const out = await world.engine().create({ kind: 'tenant', tenantId: tenantId!, to: 'cell-2' }, { by: 'test', graceSeconds: 600 });
    const outward = traffic(tenantId!, readOnly, 'out');
    try {
      expect(await world.run(out.moveId, world.engine(), 'forget')).toMatchObject({ state: 'forget' });
      await sleep(1_000);
    } finally {
      await outward.stop();
    }
    await expectEveryWriteIn('cell-2', tenantId!, outward);
    // What the target took since the flip is copied back to the source by each forget step (every few seconds, in the workflow).
    await sleep(200);
    expect(await world.engine().step(out.moveId)).toMatchObject({ next: 'wait' });
    const digest = (cellId: string) => world.cellData.digest(world.cell(cellId), tenantId!);
    expect(await digest('cell-1')).toEqual(await digest('cell-2'));
    expect((await world.moves.get(out.moveId))!.returned!.changes).toBeGreaterThan(0);

    // The workflow of the move goes on waiting to forget, copying back, until the revert claims it.
    const outWorkflow = world.run(out.moveId);
    const back = traffic(tenantId!, readOnly, 'back');
    let reverted: MoveRecord;
    try {
      const revert = await world.engine().revert(out.moveId, { by: 'test', graceSeconds: 0 });
      expect(revert).toMatchObject({ from: 'cell-2', to: 'cell-1', revertOf: out.moveId, state: 'clone' });
      reverted = await world.run(revert.moveId);
    } finally {
      await back.stop();
    }
    expect(await outWorkflow).toMatchObject({ state: 'reverted', revertedBy: reverted.moveId });
    expect(reverted).toMatchObject({ state: 'done' });
    // The revert cloned nothing: the source's copy was current but for what the catch-up's pass found.
    expect(reverted.steps.clone!.endedAt).toBe(reverted.steps.clone!.startedAt);
    const map = (await world.store.latestVersion())!;
    expect(routeTenant(map.map, map.overrides, tenantId!)).toMatchObject({ cellId: 'cell-1', reason: 'map' });

    // Refusals only inside either fenced window.
    for (const a of [...outward.answers, ...back.answers].filter((x) => x.status >= 500)) {
      expect(a).toMatchObject({ status: 503, body: { error: { code: 'tenant_moving' } } });
    }
    const written = (answers: typeof back.answers) =>
      answers.filter((a) => a.status < 300 && ['PUT', 'PATCH', 'DELETE', 'ORDER'].includes(a.op)).length;
    expect(written(outward.answers)).toBeGreaterThan(20);
    expect(written(back.answers)).toBeGreaterThan(20);
    // Every write acknowledged on either way is in the source; the target forgot its copy.
    const both = {
      acknowledged: new Map([...outward.acknowledged].map(([itemId, ack]) => [itemId, back.acknowledged.get(itemId) ?? ack])),
      ambiguous: new Set([...outward.ambiguous, ...back.ambiguous]),
      orders: [...outward.orders, ...back.orders],
    };
    await expectEveryWriteIn('cell-1', tenantId!, both);
    expect((await holding('cell-2', tenantId!)).records).toEqual([]);
    expect([...(await markers('cell-1')), ...(await markers('cell-2'))]).toEqual([]);
    expect(await world.router().request('GET', `/tenants/${tenantId}/items/r-1`)).toMatchObject({ status: 200, cellId: 'cell-1' });
  });
});

describe('a move that is stopped', () => {
  it('reaches the same end state when it dies at any point and is stepped again', async () => {
    const tenants = tenantsIn('cell-3', 2, 'crash');
    for (const tenantId of tenants) await seed(tenantId, 12);
    const digests = async (cellId: string) => Promise.all(tenants.map((t) => world.cellData.digest(world.cell(cellId), t)));
    const original = await digests('cell-3');
    const fast = { fenceLeadMs: 0, settleMs: 0, pageSize: 5 };

    // A clean run there and back counts the calls a move makes.
    let calls = 0;
    const counting = new Proxy(world.cellData, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls += 1;
          return value.apply(target, args);
        };
      },
    });
    let from = 'cell-3';
    let to = 'cell-1';
    const moveAll = async (engine: MoveEngine) => {
      const [tenantId, other] = tenants as [string, string];
      const a = await world.engine(fast).create({ kind: 'tenant', tenantId, to }, { by: 'test', graceSeconds: 0 });
      await world.run(a.moveId, engine);
      const b = await world.engine(fast).create({ kind: 'tenant', tenantId: other, to }, { by: 'test', graceSeconds: 0 });
      await world.run(b.moveId, engine);
    };
    await moveAll(world.engine({ ...fast, cellData: counting as CellData }));
    [from, to] = [to, from];
    const total = calls;
    expect(total).toBeGreaterThan(20);

    for (let crashAt = 1; crashAt <= total; crashAt += 3) {
      const crashing = dyingAt(crashAt);
      const [tenantId, other] = tenants as [string, string];
      for (const t of [tenantId, other]) {
        const move = await world.engine(fast).create({ kind: 'tenant', tenantId: t, to }, { by: 'test', graceSeconds: 0 });
        try {
          await world.run(move.moveId, world.engine({ ...fast, cellData: crashing }));
        } catch (error) {
          expect((error as Error).message).toMatch(/^crash at call/);
        }
        // Stepped again by another engine: the same end.
        expect((await world.run(move.moveId, world.engine(fast))).state).toBe('done');
      }
      expect(await digests(to), `crash at ${crashAt}`).toEqual(original);
      for (const t of tenants) {
        expect((await holding(from, t)).records, `crash at ${crashAt}`).toEqual([]);
        expect((await holding(to, t)).entry).toBeDefined();
      }
      expect([...(await markers(from)), ...(await markers(to))]).toEqual([]);
      const map = (await world.store.latestVersion())!;
      for (const t of tenants) expect(routeTenant(map.map, map.overrides, t).cellId).toBe(to);
      [from, to] = [to, from];
    }
  });

  it('moves a tenant out and back in several invocations for every step, with a crash between every two of them, losing no acknowledged write', async () => {
    const [tenantId] = tenantsIn('cell-2', 1, 'crash-each');
    await seed(tenantId!, 23);
    // A page a step (the step's budget is spent after one), five records a page; the fence's lead as it is, for the writes go on.
    const fast = { pageSize: 5, stepBudgetMs: 0, returnEveryMs: 1_000 };
    const router = world.router();
    const load = { acknowledged: new Map<string, { version: number; live: boolean }>(), ambiguous: new Set<string>(), orders: [] as string[] };
    const invocations: Record<string, number> = {};
    let crashAt = 1;
    let writes = 0;
    /** One invocation of the workflow: first a run that dies after a few calls, then one that finishes; a write in between each. */
    const invoke = async (moveId: string) => {
      const dying = dyingAt(crashAt);
      crashAt = (crashAt % 7) + 1;
      await world
        .engine({ ...fast, cellData: dying })
        .step(moveId)
        .catch((error: Error) => expect(error.message).toMatch(/^crash at call/));
      const state = (await world.moves.get(moveId))!.state;
      const outcome = await world.engine(fast).step(moveId);
      invocations[state] = (invocations[state] ?? 0) + 1;
      const itemId = `w-${(writes += 1) % 17}`;
      const written = await router.request('PUT', `/tenants/${tenantId}/items/${itemId}`, { body: widget(writes) });
      if (written.status < 300) load.acknowledged.set(itemId, { version: written.body.version, live: true });
      else if (written.status >= 500) load.ambiguous.add(itemId);
      if (outcome.next === 'wait') await sleep(outcome.seconds * 1_000);
      return outcome;
    };
    const until = async (moveId: string, ended: (state: MoveRecord['state']) => boolean) => {
      for (let i = 0; i < 300; i += 1) {
        if (ended((await world.moves.get(moveId))!.state)) return (await world.moves.get(moveId))!;
        await invoke(moveId);
      }
      throw new Error(`move ${moveId} did not get there in 300 invocations`);
    };

    const out = await world.engine(fast).create({ kind: 'tenant', tenantId: tenantId!, to: 'cell-1' }, { by: 'test', graceSeconds: 60 });
    await until(out.moveId, (state) => state === 'forget');
    await invoke(out.moveId);
    const revert = await world.engine(fast).revert(out.moveId, { by: 'test', graceSeconds: 0 });
    expect(await until(out.moveId, (state) => state !== 'forget')).toMatchObject({ state: 'reverted' });
    expect(await until(revert.moveId, (state) => FINISHED.has(state))).toMatchObject({ state: 'done' });

    // Every step that works a page at a time took several invocations.
    expect(invocations).toMatchObject({ clone: expect.any(Number), 'catch up': expect.any(Number), forget: expect.any(Number) });
    for (const step of ['clone', 'catch up', 'forget']) expect(invocations[step], step).toBeGreaterThanOrEqual(4);
    expect(load.acknowledged.size).toBeGreaterThan(10);
    await expectEveryWriteIn('cell-2', tenantId!, load);
    expect((await holding('cell-1', tenantId!)).records).toEqual([]);
    expect([...(await markers('cell-1')), ...(await markers('cell-2'))]).toEqual([]);
    for (const cellId of ['cell-1', 'cell-2']) {
      for (const moveId of [out.moveId, revert.moveId]) expect(await world.cellData.journal(world.cell(cellId), moveId)).toEqual([]);
    }
  });

  it('leaves the source as it was when aborted before the flip, and its tenant writable again', async () => {
    const [tenantId] = tenantsIn('cell-1', 1, 'abort');
    await seed(tenantId!, 8);
    const before = await world.cellData.digest(world.cell('cell-1'), tenantId!);
    const versionBefore = (await world.store.latestVersion())!.version;
    const engine = world.engine({ fenceLeadMs: 0, settleMs: 0 });
    for (const stopIn of ['catch up', 'fence', 'final'] as const) {
      const move = await engine.create({ kind: 'tenant', tenantId: tenantId!, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
      await world.stepUntil(move.moveId, stopIn, engine);
      expect(await world.moves.requestAbort(move.moveId)).toBe(true);
      expect(await engine.step(move.moveId)).toEqual({ next: 'done', state: 'aborted' });
      expect(await world.cellData.digest(world.cell('cell-1'), tenantId!)).toEqual(before);
      expect(await holding('cell-2', tenantId!)).toEqual({ records: [], entry: undefined });
      expect([...(await markers('cell-1')), ...(await markers('cell-2'))]).toEqual([]);
      expect((await world.store.latestVersion())!.version).toBe(versionBefore);
    }
    // A lifted fence: the source takes the tenant's writes again (after its lease).
    await sleep(OWNERSHIP_LEASE_MS);
    expect(await world.router().request('PUT', `/tenants/${tenantId}/items/after`, { body: widget(2) })).toMatchObject({
      status: 201,
      cellId: 'cell-1',
    });
  });
});

describe('rebalancing by plan', () => {
  let cells: CellWorld;
  beforeAll(async () => {
    cells = await cellWorld(inject('dynamoEndpoint'));
  });
  afterAll(async () => cells?.drop());

  /**
   * Runs each move the plan starts in this process, as the workflow would.
   * `signal` aborts when a move fails to run, so that the apply given it
   * stops (as if paused) instead of waiting on; `settle` then says why.
   */
  function runner() {
    const engine = cells.engine({ fenceLeadMs: 0, settleMs: 0 });
    const running = new Map<string, Promise<unknown>>();
    const failed = new AbortController();
    return {
      engine,
      runner: {
        start: async (move: MoveRecord) => {
          if (running.has(move.moveId)) return;
          const run = cells.run(move.moveId, engine);
          run.catch((error: unknown) => failed.abort(error));
          running.set(move.moveId, run);
        },
      },
      signal: failed.signal,
      settle: () => Promise.all(running.values()),
    };
  }

  async function planNow(): Promise<SavedPlan> {
    const operations = new CellOperations({ store: cells.store, cellData: cells.cellData, by: 'test' });
    const plan = await operations.plan();
    return { basedOnVersion: plan.basedOnVersion, moves: summarizeMoves(plan.moves) };
  }

  async function everyTenantIn(tenants: readonly string[]) {
    const map = (await cells.store.latestVersion())!;
    const router = cells.router();
    for (const tenantId of tenants) {
      const owner = routeTenant(map.map, map.overrides, tenantId).cellId;
      for (const cellId of Object.keys(cells.cells)) {
        const { records } = await holding(cellId, tenantId, cells);
        expect(records.length, `${tenantId} in ${cellId}`).toBe(cellId === owner ? 2 : 0);
      }
      expect(await router.request('GET', `/tenants/${tenantId}/items/i-1`)).toMatchObject({ status: 200, cellId: owner });
    }
  }

  it('gives a 4th cell its share with plan and apply, then empties a drained cell the same way', async () => {
    const tenants = Array.from({ length: 24 }, (_, i) => `shop-${i}`);
    const router = cells.router();
    for (const tenantId of tenants) {
      for (const itemId of ['i-0', 'i-1'])
        expect((await router.request('PUT', `/tenants/${tenantId}/items/${itemId}`, { body: widget(1) })).status).toBe(201);
    }
    await cells.addCell('cell-4');
    const operations = new CellOperations({ store: cells.store, cellData: cells.cellData, by: 'test' });
    const expected = (await operations.plan()).cells;
    const seen: ApplyProgress[] = [];
    const { engine, runner: start, signal, settle } = runner();
    const result = await new PlanRunner({
      store: cells.store,
      engine,
      moves: cells.moves,
      runner: start,
      concurrency: 3,
      graceSeconds: 0,
      by: 'test',
      pollMs: 100,
      onProgress: (p) => seen.push(p),
    }).apply(await planNow(), signal);
    await settle();
    expect(result).toMatchObject({ paused: false, failed: [], bucketsDone: 4_096, bucketsTotal: 4_096 });
    expect(seen.at(-1)!.recordsCopied).toBeGreaterThan(0);
    const counts = bucketCounts((await cells.store.latestVersion())!.map);
    for (const cell of expected) expect(counts.get(cell.cellId) ?? 0, cell.cellId).toBe(cell.after);
    await everyTenantIn(tenants);

    await cells.store.setStatus('cell-1', 'draining');
    const drain = runner();
    await new PlanRunner({
      store: cells.store,
      engine: drain.engine,
      moves: cells.moves,
      runner: drain.runner,
      concurrency: 2,
      graceSeconds: 0,
      by: 'test',
      pollMs: 100,
    }).apply(await planNow(), drain.signal);
    await drain.settle();
    expect(bucketCounts((await cells.store.latestVersion())!.map).get('cell-1')).toBeUndefined();
    await everyTenantIn(tenants);
  });

  it('pauses when asked, and a second apply takes up the same plan where the first left it', async () => {
    await cells.store.setStatus('cell-1', 'active');
    const plan = await planNow();
    const first = runner();
    const pause = new AbortController();
    const paused = await new PlanRunner({
      store: cells.store,
      engine: first.engine,
      moves: cells.moves,
      runner: first.runner,
      concurrency: 1,
      graceSeconds: 0,
      by: 'test',
      pollMs: 50,
      onProgress: () => pause.abort(),
    }).apply(plan, AbortSignal.any([pause.signal, first.signal]));
    expect(paused.paused).toBe(true);
    await first.settle();
    const second = runner();
    const resumed = await new PlanRunner({
      store: cells.store,
      engine: second.engine,
      moves: cells.moves,
      runner: second.runner,
      concurrency: 2,
      graceSeconds: 0,
      by: 'test',
      pollMs: 100,
    }).apply(plan, second.signal);
    await second.settle();
    expect(resumed).toMatchObject({ paused: false, failed: [], bucketsDone: resumed.bucketsTotal });
    expect(bucketCounts((await cells.store.latestVersion())!.map).get('cell-1')).toBeGreaterThan(4_000);
  });
});

describe('the directory backfill', () => {
  it('records every tenant with data in a cell, once, so that a bucket move finds tenants that wrote before the directory', async () => {
    const legacy = tenantsIn('cell-2', 2, 'legacy');
    const { table } = world.cells['cell-2']!;
    for (const tenantId of legacy) {
      for (const itemId of ['a', 'b'])
        await table.doc.send(
          new PutCommand({ TableName: table.tableName, Item: { ...itemKey(tenantId, itemId), entity: 'item', tenantId, itemId } }),
        );
    }
    const cell = world.cell('cell-2');
    for (const tenantId of legacy) expect(await world.cellData.tenantsIn(cell, bucketOf(tenantId))).not.toContain(tenantId);
    const first = await world.cellData.backfillDirectory(cell);
    expect(first.added).toBeGreaterThanOrEqual(legacy.length);
    for (const tenantId of legacy) expect(await world.cellData.tenantsIn(cell, bucketOf(tenantId))).toContain(tenantId);
    expect((await world.cellData.backfillDirectory(cell)).added).toBe(0);
  });
});
