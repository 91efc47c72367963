import { DeleteCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CellData } from '../../control-plane/cell-data.ts';
import type { MoveRecord } from '../../control-plane/move-record.ts';
import { MoveStore } from '../../control-plane/move-store.ts';
import { MoveEngine, type MoveEngineDeps } from '../../control-plane/move-engine.ts';
import { bucketOf, routeTenant } from '../../routing/routing.ts';
import { ControlPlaneStore } from '../../control-plane/store.ts';
import type { CellRecord } from '../../routing/records.ts';
import { CELL_API_TIMEOUT_SECONDS, CELL_RECORDS_PK, orderKey, tenantKey, WRITE_WINDOW_MS } from '../../layers/shared/src/contracts/cell-table.ts';
import { ID_RULE } from '../../layers/shared/src/ids.ts';
import { InvalidInputError, NotFoundError } from '../../control-plane/errors.ts';
import { shown } from '../../lib/cli-input.ts';
import { recordCommands } from '../support/commands.ts';
import { DeployTimeCalls } from '../support/deploy-time.ts';
import { cellWorld, type CellWorld } from '../support/moving.ts';
import { createCellTable } from '../support/tables.ts';

/**
 * The move engine step by step, with its clock in the test's hands: what
 * each step returns, records and says, and the paths a move under load
 * seldom takes (a fence lifted, a copy that does not verify, a flip that
 * loses a race, a source that changes after the flip). No traffic runs
 * here; test/control-plane/move-engine.under-load.test.ts moves tenants while they serve.
 */
let world: CellWorld;
beforeAll(async () => {
  world = await cellWorld(inject('dynamoEndpoint'));
});
afterAll(async () => world?.drop());

const widget = { title: 'Widget', price: { amount: 1, currency: 'EUR' }, stock: 10 };
let named = 0;

/** A tenant new to this suite that the current map gives to `cellId`. */
async function tenantIn(cellId: string, prefix: string, bucket?: number): Promise<string> {
  const map = (await world.store.latestVersion())!;
  for (;;) {
    const tenantId = `${prefix}-${(named += 1)}`;
    if (bucket !== undefined && bucketOf(tenantId) !== bucket) continue;
    if (routeTenant(map.map, map.overrides, tenantId).cellId === cellId) return tenantId;
  }
}

async function seed(tenantId: string, items: number): Promise<void> {
  const router = world.router();
  for (let i = 0; i < items; i += 1) expect((await router.request('PUT', `/tenants/${tenantId}/items/i-${i}`, { body: widget })).status).toBe(201);
}

/** A tenant's records in a cell (its item collection). */
async function records(cellId: string, tenantId: string) {
  const { table } = world.cells[cellId]!;
  const { Items = [] } = await table.doc.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': tenantKey(tenantId) },
      ConsistentRead: true,
    }),
  );
  return Items;
}

async function marker(cellId: string, moveId: string) {
  const { table } = world.cells[cellId]!;
  const { Items = [] } = await table.doc.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk AND sk = :sk',
      ExpressionAttributeValues: { ':pk': CELL_RECORDS_PK, ':sk': `MOVE#${moveId}` },
      ConsistentRead: true,
    }),
  );
  return Items[0];
}

/** An engine on the test's clock, its log and its waits kept: a wait moves the clock, and `onSleep` sees it. */
function clocked(deps: Partial<MoveEngineDeps> = {}, onSleep: (ms: number) => Promise<void> | void = () => {}) {
  const clock = { at: Date.now() };
  const log: string[] = [];
  const sleeps: number[] = [];
  const engine = world.engine({
    now: () => clock.at,
    sleep: async (ms) => {
      // An engine that waits on and on fails the test instead of hanging it.
      if (sleeps.length >= 1_000) throw new Error('the engine waited 1,000 times in one test');
      sleeps.push(ms);
      clock.at += ms;
      await onSleep(ms);
    },
    log: (message) => log.push(message),
    ...deps,
  });
  return { clock, log, sleeps, engine };
}

/** `target` with some of its methods answered by the test; the others are its own. */
function answering<T extends object>(target: T, overrides: Partial<Record<keyof T, (...args: any[]) => unknown>>): T {
  return new Proxy(target, {
    get(object, name, receiver) {
      const own = overrides[name as keyof T];
      if (own) return own;
      const value = Reflect.get(object, name, receiver);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
}

/** `cellData` with some of its calls answered by the test. */
const cellDataWith = (overrides: Partial<Record<keyof CellData, (...args: any[]) => unknown>>) => answering(world.cellData, overrides);

const stored = async (moveId: string) => (await world.moves.get(moveId))!;

const stepUntil = (engine: MoveEngine, moveId: string, state: MoveRecord['state']) => world.stepUntil(moveId, state, engine);

/** Steps a move until its record is in `state`, moving the test's clock on by each wait the engine asks for. */
async function advanceUntil(engine: MoveEngine, clock: { at: number }, moveId: string, state: MoveRecord['state']): Promise<void> {
  for (let steps = 0; steps < 200; steps += 1) {
    if ((await stored(moveId)).state === state) return;
    const outcome = await engine.step(moveId);
    if (outcome.next === 'wait') clock.at += outcome.seconds * 1_000;
  }
  throw new Error(`move ${moveId} did not reach ${state}`);
}

describe('a move, step by step', () => {
  it('returns, records and logs what each step did, on its own clock', async () => {
    const tenantId = await tenantIn('cell-1', 'steps');
    await seed(tenantId, 3);
    const versionBefore = (await world.store.latestVersion())!.version;
    const { clock, log, sleeps, engine } = clocked({ fenceLeadMs: 2_500, settleMs: 1_000 });
    const t0 = clock.at;
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'operator', graceSeconds: 10 });
    expect(move).toStrictEqual({
      moveId: expect.stringMatching(/^\d{14}-[0-9a-f]{6}$/),
      kind: 'tenant',
      subject: tenantId,
      buckets: [],
      tenants: [tenantId],
      from: 'cell-1',
      to: 'cell-2',
      state: 'clone',
      steps: {},
      copied: 0,
      fenceAttempts: 0,
      graceSeconds: 10,
      by: 'operator',
      createdAt: t0,
      updatedAt: t0,
    });
    expect(move.moveId.slice(0, 14)).toBe(
      new Date(t0)
        .toISOString()
        .replace(/[-:.TZ]/g, '')
        .slice(0, 14),
    );
    expect(await stored(move.moveId)).toStrictEqual(move);

    clock.at = t0 + 100;
    expect(await engine.step(move.moveId)).toEqual({ next: 'continue' });
    expect(await stored(move.moveId)).toMatchObject({
      state: 'catch up',
      copied: 3,
      steps: { clone: { startedAt: t0 + 100, endedAt: t0 + 100 } },
      updatedAt: t0 + 100,
    });
    expect((await stored(move.moveId)).checkpoint).toBeUndefined();
    expect(await records('cell-2', tenantId)).toHaveLength(3);
    // Both cells were told before anything was copied; the source's marker has no fence yet.
    expect(await marker('cell-1', move.moveId)).toMatchObject({ role: 'source', tenants: [tenantId], buckets: [] });
    expect((await marker('cell-1', move.moveId))!.fenceAt).toBeUndefined();
    expect(await marker('cell-2', move.moveId)).toMatchObject({ role: 'target', tenants: [tenantId], buckets: [] });

    // The catch-up reads every record once the journal holds every write: the fence's lead and the settle time after the markers.
    const journalFrom = t0 + 100 + 2_500 + 1_000;
    expect(await stored(move.moveId)).toMatchObject({ journalFrom });
    clock.at = t0 + 200;
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 4 });
    expect((await stored(move.moveId)).steps['catch up']).toBeUndefined();
    clock.at = journalFrom;
    expect(await engine.step(move.moveId)).toEqual({ next: 'continue' });
    expect(await stored(move.moveId)).toMatchObject({
      state: 'fence',
      copied: 3,
      steps: { 'catch up': { startedAt: journalFrom, endedAt: journalFrom } },
    });

    clock.at = journalFrom + 100;
    const fenceAt = journalFrom + 100 + 2_500;
    // Told to come back when the fence holds, in whole seconds.
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 2 });
    expect(await stored(move.moveId)).toMatchObject({ state: 'final', fenceAt, steps: { fence: { startedAt: journalFrom + 100 } } });
    expect((await stored(move.moveId)).steps.fence!.endedAt).toBeUndefined();
    expect(await marker('cell-1', move.moveId)).toMatchObject({ role: 'source', tenants: [tenantId], buckets: [], fenceAt });

    // The final step waits out the rest of the settle time itself, then flips at once.
    expect(sleeps).toEqual([]);
    clock.at = fenceAt + 200;
    const flippedAt = fenceAt + 1_000;
    // Back every 5 s until forget: the target's writes are copied back to the source meanwhile.
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 5 });
    expect(sleeps).toEqual([800]);
    expect(await stored(move.moveId)).toMatchObject({
      state: 'forget',
      flippedAt,
      fencedMs: 1_000,
      mapVersion: versionBefore + 1,
      // Nothing was written since the catch-up checked every record: the fence had nothing to copy or check.
      verified: { records: 0, checksum: '' },
      fenced: { changes: 0, reads: 0 },
      forgetAt: flippedAt + 10_000,
      steps: {
        fence: { startedAt: journalFrom + 100, endedAt: flippedAt },
        'final catch up': { startedAt: flippedAt, endedAt: flippedAt },
        verify: { startedAt: flippedAt, endedAt: flippedAt },
        flip: { startedAt: flippedAt, endedAt: flippedAt },
        forget: { startedAt: flippedAt },
      },
    });
    const map = (await world.store.latestVersion())!;
    expect(map).toMatchObject({
      version: versionBefore + 1,
      by: 'operator',
      change: `move tenant ${tenantId} from cell-1 to cell-2 (${move.moveId})`,
    });
    expect(map.createdAt).toBe(new Date(flippedAt).toISOString());
    expect(routeTenant(map.map, map.overrides, tenantId)).toMatchObject({ cellId: 'cell-2', reason: 'override' });
    // The source's marker goes at the flip; the target's stays until forget, so that its writes are journaled.
    expect(await marker('cell-1', move.moveId)).toBeUndefined();
    expect(await marker('cell-2', move.moveId)).toMatchObject({ role: 'target' });

    // The grace period, counted in whole seconds rounded up, a copy back at most every 5 s.
    clock.at = flippedAt + 2_500;
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 5 });
    clock.at = flippedAt + 7_500;
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 3 });
    expect(await records('cell-1', tenantId)).toHaveLength(3);
    expect(await stored(move.moveId)).toMatchObject({ returned: { passes: 2, changes: 0, reads: 0 } });
    clock.at = flippedAt + 10_000;
    // Forgotten, and the target's marker gone; its journal waits out the write window of an instance that read the marker.
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 4 });
    expect(await records('cell-1', tenantId)).toEqual([]);
    expect(await marker('cell-2', move.moveId)).toBeUndefined();
    clock.at = flippedAt + 13_600;
    expect(await engine.step(move.moveId)).toEqual({ next: 'done', state: 'done' });
    expect(await stored(move.moveId)).toMatchObject({
      state: 'done',
      forgetting: true,
      unmarkedAt: flippedAt + 10_000,
      steps: { forget: { startedAt: flippedAt, endedAt: flippedAt + 13_600 } },
    });
    expect(await records('cell-1', tenantId)).toEqual([]);
    expect(await records('cell-2', tenantId)).toHaveLength(3);
    expect(await world.cellData.directoryEntry(world.cell('cell-1'), bucketOf(tenantId), tenantId)).toBeUndefined();
    expect(await world.cellData.directoryEntry(world.cell('cell-2'), bucketOf(tenantId), tenantId)).toBeDefined();
    // A finished move steps no further.
    expect(await engine.step(move.moveId)).toEqual({ next: 'done', state: 'done' });

    expect(log).toEqual([
      'announced to both cells; cloning',
      'cloned 3 records',
      'caught up',
      `fence at ${new Date(fenceAt).toISOString()}`,
      `flipped in map version ${versionBefore + 1}; writes were refused for 1000 ms`,
      "forgetting cell-1's copy: the move can no longer be reverted",
      'done; the source copy is forgotten',
    ]);
  });
});

describe('a step run again', () => {
  it('keeps the fence it announced when the fence step dies after announcing it', async () => {
    const tenantId = await tenantIn('cell-3', 'refence');
    await seed(tenantId, 1);
    let dying = false;
    // The default lead: past every instance's lease and the writes it let through.
    const { clock, engine } = clocked({
      settleMs: 0,
      cellData: cellDataWith({
        journal: async (...args: Parameters<CellData['journal']>) => {
          if (dying) throw new Error('died in the fence step');
          return world.cellData.journal(...args);
        },
      }),
    });
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
    await advanceUntil(engine, clock, move.moveId, 'fence');
    dying = true;
    await expect(engine.step(move.moveId)).rejects.toThrow('died in the fence step');
    const announced = (await stored(move.moveId)).fenceAt!;
    expect(announced).toBe(clock.at + WRITE_WINDOW_MS + 100);
    dying = false;
    clock.at += 500;
    // The same fence, announced once: the wait is what is left of it.
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: Math.floor((WRITE_WINDOW_MS + 100 - 500) / 1_000) });
    expect(await stored(move.moveId)).toMatchObject({ state: 'final', fenceAt: announced });
    expect(await marker('cell-3', move.moveId)).toMatchObject({ fenceAt: announced });
    clock.at = announced;
    await advanceUntil(engine, clock, move.moveId, 'done');
    expect(await stored(move.moveId)).toMatchObject({ state: 'done' });
  });
});

describe('the fenced window', () => {
  it('reads what changed since the catch-up, not the tenant: the same for 3 records and 300', async () => {
    const inFence: Array<{ items: number; reads: Record<string, number> }> = [];
    for (const size of [3, 300]) {
      const tenantId = await tenantIn('cell-1', `size-${size}`);
      await seed(tenantId, size);
      let counting = false;
      const reads: Record<string, number> = {};
      const count = (method: string, n: number) => {
        if (counting) reads[method] = (reads[method] ?? 0) + n;
      };
      const countingData = cellDataWith(
        Object.fromEntries(
          (['page', 'read', 'journal', 'digest', 'reconcile', 'copyKeys', 'differingKeys'] as const).map((method) => [
            method,
            async (...args: unknown[]) => {
              const result = await (world.cellData[method] as (...a: unknown[]) => Promise<unknown>)(...args);
              const r = result as { items?: unknown[]; records?: unknown[] | number; compared?: number; written?: number };
              count(
                method,
                Array.isArray(result)
                  ? result.length
                  : (r.items?.length ?? (Array.isArray(r.records) ? r.records.length : (r.compared ?? r.written ?? 1))),
              );
              return result;
            },
          ]),
        ),
      );
      // The flip ends the fenced window: reads after it (forget's digest) are not the window's.
      const flipping = answering(countingData, {
        claimOwnership: async (...args: Parameters<CellData['claimOwnership']>) => {
          counting = false;
          return world.cellData.claimOwnership(...args);
        },
      });
      const { engine } = clocked({ fenceLeadMs: 0, settleMs: 0, cellData: flipping });
      const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
      await stepUntil(engine, move.moveId, 'fence');
      // Past the cell API's lease: it has read the marker, and journals what it writes.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const router = world.router();
      for (const n of [0, 1, 2])
        expect((await router.request('PUT', `/tenants/${tenantId}/items/i-${n}`, { body: { ...widget, stock: 99 } })).status).toBe(200);
      await stepUntil(engine, move.moveId, 'final');
      counting = true;
      expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 0 });
      expect(await stored(move.moveId)).toMatchObject({ state: 'forget', verified: { records: 3 }, fenced: { changes: 3 } });
      expect((await records('cell-2', tenantId)).filter((record) => record.stock === 99)).toHaveLength(3);
      inFence.push({ items: size, reads });
    }
    // No whole-tenant read inside the fence, and the same reads for both.
    for (const { reads } of inFence) expect([reads.page, reads.digest, reads.reconcile]).toEqual([undefined, undefined, undefined]);
    expect(inFence[0]!.reads).toEqual(inFence[1]!.reads);
  });
});

describe('a move within its step budget', () => {
  it('copies a page a step, catches up a page a step, going on from its checkpoint, and forgets a page a step', async () => {
    const tenantId = await tenantIn('cell-2', 'pages');
    await seed(tenantId, 5);
    // A budget of nothing, on a clock that stands still: each step hands back after its first page (one range at a time).
    const { engine } = clocked({ pageSize: 2, stepBudgetMs: 0, fenceLeadMs: 0, settleMs: 0, copySegments: 1 });
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, { by: 'test', graceSeconds: 0 });
    const seen: Array<Pick<MoveRecord, 'state' | 'copied' | 'checkpoint'>> = [];
    for (let i = 0; i < 4; i += 1) {
      expect(await engine.step(move.moveId)).toEqual({ next: 'continue' });
      const { state, copied, checkpoint } = await stored(move.moveId);
      seen.push({ state, copied, checkpoint });
    }
    const afterSecondKey = { pk: tenantKey(tenantId), sk: 'ITEM#i-1' };
    expect(seen).toEqual([
      { state: 'clone', copied: 2, checkpoint: { tenant: 1, segments: [{ tenant: 0, after: afterSecondKey }] } },
      { state: 'clone', copied: 4, checkpoint: { tenant: 1, segments: [{ tenant: 0, after: { pk: tenantKey(tenantId), sk: 'ITEM#i-3' } }] } },
      // The last page: the tenant is done, its directory entry copied.
      { state: 'clone', copied: 5, checkpoint: { tenant: 1, segments: [] } },
      { state: 'catch up', copied: 5, checkpoint: undefined },
    ]);
    expect(await records('cell-3', tenantId)).toHaveLength(5);

    // The catch-up too: a page of both cells' records a step, from where the last step got to.
    const caught: Array<Pick<MoveRecord, 'state' | 'checkpoint'>> = [];
    for (let i = 0; i < 4; i += 1) {
      expect(await engine.step(move.moveId)).toEqual({ next: 'continue' });
      const { state, checkpoint } = await stored(move.moveId);
      caught.push({ state, checkpoint });
    }
    expect(caught).toEqual([
      { state: 'catch up', checkpoint: { tenant: 1, segments: [{ tenant: 0, after: afterSecondKey }] } },
      { state: 'catch up', checkpoint: { tenant: 1, segments: [{ tenant: 0, after: { pk: tenantKey(tenantId), sk: 'ITEM#i-3' } }] } },
      { state: 'catch up', checkpoint: { tenant: 1, segments: [] } },
      { state: 'fence', checkpoint: undefined },
    ]);

    await stepUntil(engine, move.moveId, 'forget');
    const left: number[] = [];
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      outcomes.push((await engine.step(move.moveId)).next);
      left.push((await records('cell-2', tenantId)).length);
    }
    expect(outcomes).toEqual(['continue', 'continue', 'continue', 'done']);
    expect(left).toEqual([3, 1, 0, 0]);
    expect(await stored(move.moveId)).toMatchObject({ state: 'done', copied: 5 });
  });

  it('splits a big tenant into ranges of keys that copy side by side, each going on from its own checkpoint, and takes the next tenants beside it', async () => {
    const big = await tenantIn('cell-2', 'wide');
    await seed(big, 40);
    const small = await tenantIn('cell-2', 'narrow', bucketOf(big));
    await seed(small, 1);
    const bucket = bucketOf(big);
    let pages = 0;
    const { clock, engine } = clocked({
      pageSize: 4,
      stepBudgetMs: 0,
      fenceLeadMs: 0,
      settleMs: 0,
      copySegments: 4,
      cellData: cellDataWith({
        page: (...args: Parameters<CellData['page']>) => {
          pages += 1;
          return world.cellData.page(...args);
        },
      }),
    });
    const move = await engine.create({ kind: 'bucket', first: bucket, last: bucket, to: 'cell-3' }, { by: 'test', graceSeconds: 0 });
    const perStep: number[] = [];
    for (let i = 0; i < 40 && (await stored(move.moveId)).state === 'clone'; i += 1) {
      pages = 0;
      await engine.step(move.moveId);
      perStep.push(pages);
    }
    // The tenants of the bucket side by side, then the big one's keys split up to four ways: a page of each range a step.
    expect(perStep.slice(0, 2)).toEqual([2, 2]);
    expect(Math.max(...perStep)).toBe(4);
    // Fewer steps than the big tenant's pages one after another.
    expect(perStep.length).toBeLessThan(40 / 4);
    expect(await stored(move.moveId)).toMatchObject({ state: 'catch up', copied: 41 });
    const digests = (cellId: string) => Promise.all([big, small].map((tenantId) => world.cellData.digest(world.cell(cellId), tenantId)));
    expect(await digests('cell-3')).toEqual(await digests('cell-2'));
    // The catch-up's pass goes the same way: nothing differs, nothing is written.
    await stepUntil(engine, move.moveId, 'fence');
    expect((await stored(move.moveId)).copied).toBe(41);
    expect(await world.moves.requestAbort(move.moveId)).toBe(true);
    await advanceUntil(engine, clock, move.moveId, 'aborted');
  });
});

describe('a fence that cannot hold', () => {
  /** An order in a cell's table as the cell API leaves it, created at `createdAt`. */
  async function putOrder(cellId: string, tenantId: string, orderId: string, status: string, createdAt: number) {
    const { table } = world.cells[cellId]!;
    await table.doc.send(
      new PutCommand({
        TableName: table.tableName,
        Item: { ...orderKey(tenantId, orderId), entity: 'order', tenantId, orderId, status, createdAt: new Date(createdAt).toISOString() },
      }),
    );
  }

  it('is lifted while an order of the tenant is running, and the move fails after three tries, the source as it was', async () => {
    const tenantId = await tenantIn('cell-1', 'saga');
    await seed(tenantId, 2);
    // Long before the fence, but past PENDING: its saga runs.
    await putOrder('cell-1', tenantId, 'o-paid', 'PAID', Date.now() - 3_600_000);
    const before = await world.cellData.digest(world.cell('cell-1'), tenantId);
    const versionBefore = (await world.store.latestVersion())!.version;
    const { log, sleeps, engine } = clocked({ fenceLeadMs: 0, settleMs: 0, sagaWaitMs: 300 });
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, { by: 'test', graceSeconds: 0 });
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      await stepUntil(engine, move.moveId, 'final');
      sleeps.length = 0;
      expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 5 });
      // Looked again every 100 ms, for as long as the saga wait.
      expect(sleeps).toEqual([100, 100, 100]);
      const lifted = await stored(move.moveId);
      expect(lifted).toMatchObject({ state: 'catch up', fenceAttempts: attempt });
      expect(lifted.fenceAt).toBeUndefined();
      // The fenced steps are timed afresh next time; those before stay.
      expect(Object.keys(lifted.steps).sort()).toEqual(['catch up', 'clone']);
      // The source takes the tenant's writes again: its marker has no fence.
      expect(await marker('cell-1', move.moveId)).toMatchObject({ role: 'source', tenants: [tenantId] });
      expect((await marker('cell-1', move.moveId))!.fenceAt).toBeUndefined();
      expect(log.at(-1)).toBe('fence lifted (orders of the moving tenants were still running); catching up again');
    }
    await stepUntil(engine, move.moveId, 'final');
    expect(await engine.step(move.moveId)).toEqual({ next: 'done', state: 'failed' });
    expect(await stored(move.moveId)).toMatchObject({
      state: 'failed',
      fenceAttempts: 3,
      error: 'orders of the moving tenants were still running, 3 times',
    });
    expect(log.at(-1)).toBe('failed (orders of the moving tenants were still running, 3 times): the source is as it was');
    expect(await world.cellData.digest(world.cell('cell-1'), tenantId)).toEqual(before);
    expect(await records('cell-3', tenantId)).toEqual([]);
    expect(await marker('cell-1', move.moveId)).toBeUndefined();
    expect(await marker('cell-3', move.moveId)).toBeUndefined();
    expect((await world.store.latestVersion())!.version).toBe(versionBefore);
  });

  it('waits for no PENDING order older than the fence by twice the cell API timeout: its saga never started', async () => {
    const orphanedMs = 2 * CELL_API_TIMEOUT_SECONDS * 1_000;
    const { clock, engine } = clocked({ fenceLeadMs: 1_000, settleMs: 0, sagaWaitMs: 0 });
    // The catch-up waits 1 s for the journal, and the fence is announced 1 s ahead.
    const fenceAt = (at: number) => at + 2_000;
    // One millisecond younger, and the order may still start its saga: the fence is lifted.
    const young = await tenantIn('cell-2', 'pending');
    await seed(young, 1);
    const youngMove = await engine.create({ kind: 'tenant', tenantId: young, to: 'cell-1' }, { by: 'test', graceSeconds: 0 });
    await putOrder('cell-2', young, 'o-young', 'PENDING', fenceAt(clock.at) - orphanedMs);
    await advanceUntil(engine, clock, youngMove.moveId, 'final');
    clock.at += 1_000;
    expect(await engine.step(youngMove.moveId)).toEqual({ next: 'wait', seconds: 5 });
    expect(await world.moves.requestAbort(youngMove.moveId)).toBe(true);
    // The copy goes at once; the journal once no instance can still write to it by the source's marker.
    expect(await engine.step(youngMove.moveId)).toEqual({ next: 'wait', seconds: 1 });
    await advanceUntil(engine, clock, youngMove.moveId, 'aborted');

    const old = await tenantIn('cell-2', 'pending');
    await seed(old, 1);
    const oldMove = await engine.create({ kind: 'tenant', tenantId: old, to: 'cell-1' }, { by: 'test', graceSeconds: 0 });
    await putOrder('cell-2', old, 'o-old', 'PENDING', fenceAt(clock.at) - orphanedMs - 1);
    await advanceUntil(engine, clock, oldMove.moveId, 'final');
    clock.at += 1_000;
    expect(await engine.step(oldMove.moveId)).toEqual({ next: 'wait', seconds: 0 });
    expect(await stored(oldMove.moveId)).toMatchObject({ state: 'forget', fenceAttempts: 0 });
    // It moved as it is: its client's retry starts it in the target.
    expect((await records('cell-1', old)).map((r) => r.sk)).toContain('ORDER#o-old');
  });

  it('waits while an order runs, and flips once it ends', async () => {
    const tenantId = await tenantIn('cell-2', 'ends');
    await seed(tenantId, 1);
    await putOrder('cell-2', tenantId, 'o-1', 'RESERVED', Date.now());
    const { sleeps, engine } = clocked({ fenceLeadMs: 0, settleMs: 0, sagaWaitMs: 1_000 }, async () => {
      // The saga ends during the second wait.
      if (sleeps.length === 2) await putOrder('cell-2', tenantId, 'o-1', 'CONFIRMED', Date.now());
    });
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, { by: 'test', graceSeconds: 0 });
    await stepUntil(engine, move.moveId, 'final');
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 0 });
    expect(sleeps).toEqual([100, 100]);
    expect(await stored(move.moveId)).toMatchObject({ state: 'forget', fenceAttempts: 0 });
    expect(await records('cell-3', tenantId)).toContainEqual(expect.objectContaining({ orderId: 'o-1', status: 'CONFIRMED' }));
  });

  it('is lifted when a changed record does not verify, missing or different; an abort then leaves the source as it was', async () => {
    for (const distort of ['missing', 'different'] as const) {
      const tenantId = await tenantIn('cell-3', 'verify');
      await seed(tenantId, 2);
      const before = await world.cellData.digest(world.cell('cell-3'), tenantId);
      let copying = true;
      const { log, engine } = clocked({
        fenceLeadMs: 0,
        settleMs: 0,
        cellData: cellDataWith({
          // A record written during the move (in the journal) whose copy in the fence goes wrong.
          journal: async (cell: CellRecord, moveId: string) => [
            ...(await world.cellData.journal(cell, moveId)),
            { tenantId, recordSk: 'ITEM#i-0', at: 0 },
          ],
          copyKeys: async (...args: Parameters<CellData['copyKeys']>) =>
            copying ? world.cellData.copyKeys(...args) : { written: 0, removed: 0, records: [] },
        }),
      });
      const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-1' }, { by: 'test', graceSeconds: 0 });
      await stepUntil(engine, move.moveId, 'final');
      copying = false;
      const { table } = world.cells['cell-1']!;
      const key = { pk: tenantKey(tenantId), sk: 'ITEM#i-0' };
      if (distort === 'missing') await table.doc.send(new DeleteCommand({ TableName: table.tableName, Key: key }));
      else
        await table.doc.send(
          new UpdateCommand({
            TableName: table.tableName,
            Key: key,
            UpdateExpression: 'SET title = :other',
            ExpressionAttributeValues: { ':other': 'other' },
          }),
        );
      expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 5 });
      expect(await stored(move.moveId)).toMatchObject({ state: 'catch up', fenceAttempts: 1 });
      expect(log.at(-1)).toBe('fence lifted (the copy did not verify); catching up again');
      expect((await stored(move.moveId)).verified).toBeUndefined();
      const map = (await world.store.latestVersion())!;
      expect(routeTenant(map.map, map.overrides, tenantId).cellId).toBe('cell-3');

      // The target holds a copy and its directory entry: an abort removes both, and the markers.
      expect(await records('cell-1', tenantId)).toHaveLength(distort === 'missing' ? 1 : 2);
      expect(await world.moves.requestAbort(move.moveId)).toBe(true);
      expect(await engine.step(move.moveId)).toEqual({ next: 'done', state: 'aborted' });
      const aborted = await stored(move.moveId);
      expect(aborted).toMatchObject({ state: 'aborted', abortRequested: true });
      expect([aborted.fenceAt, aborted.checkpoint, aborted.error]).toEqual([undefined, undefined, undefined]);
      expect(log.at(-1)).toBe('aborted: the source is as it was');
      expect(await records('cell-1', tenantId)).toEqual([]);
      expect(await world.cellData.directoryEntry(world.cell('cell-1'), bucketOf(tenantId), tenantId)).toBeUndefined();
      expect(await world.cellData.digest(world.cell('cell-3'), tenantId)).toEqual(before);
      expect(await marker('cell-1', move.moveId)).toBeUndefined();
      expect(await marker('cell-3', move.moveId)).toBeUndefined();
    }
  });
});

describe('after the flip', () => {
  it('refuses a revert, with the reason and changing nothing, unless the move flipped and waits to forget', async () => {
    const tenantId = await tenantIn('cell-1', 'no-revert');
    await seed(tenantId, 1);
    const engine = world.engine({ fenceLeadMs: 0, settleMs: 0 });
    const refused = async (moveId: string, reason: RegExp | string) => {
      const before = await world.moves.list();
      await expect(engine.revert(moveId, { by: 'test', graceSeconds: 0 })).rejects.toThrow(reason);
      expect(await world.moves.list()).toEqual(before);
    };
    await expect(engine.revert('20260101000000-abcdef', { by: 'test', graceSeconds: 0 })).rejects.toThrow(NotFoundError);
    await expect(engine.revert('20260101000000-abcdef', { by: 'test', graceSeconds: 0 })).rejects.toThrow('no move "20260101000000-abcdef"');

    // Still cloning: that is an abort.
    const cloning = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 600 });
    await refused(
      cloning.moveId,
      `move ${cloning.moveId} has not flipped (clone): cell-1 still serves tenant ${tenantId}; to undo it, abort it (cells move tenant ${tenantId} cell-2 --abort)`,
    );
    expect(await world.moves.requestAbort(cloning.moveId)).toBe(true);
    expect(await world.run(cloning.moveId, engine)).toMatchObject({ state: 'aborted' });
    await refused(cloning.moveId, `move ${cloning.moveId} aborted before its flip: tenant ${tenantId} never left cell-1`);

    // Flipped and waiting to forget: revertible, once. Two at once: one wins, the other is told who did.
    const flipped = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 600 });
    await world.stepUntil(flipped.moveId, 'forget', engine);
    const twice = await Promise.allSettled([0, 1].map(() => engine.revert(flipped.moveId, { by: 'test', graceSeconds: 0 })));
    const won = twice.filter((r): r is PromiseFulfilledResult<MoveRecord> => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    const revert = won[0]!.value;
    expect(twice.find((r) => r.status === 'rejected')).toMatchObject({
      reason: { message: `move ${flipped.moveId} is being reverted already, by move ${revert.moveId}` },
    });
    expect(await stored(flipped.moveId)).toMatchObject({ state: 'forget', revertedBy: revert.moveId });
    await refused(flipped.moveId, `move ${flipped.moveId} is being reverted already, by move ${revert.moveId}`);
    // The move's own forget cannot start now: it hands the move over instead, and the revert waits for that.
    expect(await world.moves.claimForgetting(flipped.moveId)).toBe(false);
    expect(await engine.step(revert.moveId)).toEqual({ next: 'wait', seconds: 1 });
    expect(await engine.step(flipped.moveId)).toEqual({ next: 'done', state: 'reverted' });
    expect(await marker('cell-2', flipped.moveId)).toBeUndefined();
    await refused(flipped.moveId, `move ${flipped.moveId} was reverted already, by move ${revert.moveId}`);
    const back = await world.run(revert.moveId, engine);
    expect(back).toMatchObject({ state: 'done', from: 'cell-2', to: 'cell-1', copied: 0 });
    expect(routeTenant((await world.store.latestVersion())!.map, (await world.store.latestVersion())!.overrides, tenantId).cellId).toBe('cell-1');
    expect(await records('cell-1', tenantId)).toHaveLength(1);
    expect(await records('cell-2', tenantId)).toEqual([]);
    // Forgotten: nothing to go back to.
    await refused(
      revert.moveId,
      `move ${revert.moveId} is done: cell-2's copy was forgotten, so there is nothing to go back to; move tenant ${tenantId} back to cell-2 as a new move`,
    );

    // Forgetting already: too late.
    const late = await engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, { by: 'test', graceSeconds: 600 });
    await world.stepUntil(late.moveId, 'forget', engine);
    expect(await world.moves.claimForgetting(late.moveId)).toBe(true);
    await refused(
      late.moveId,
      `move ${late.moveId} is forgetting cell-1's copy: too late to revert; move tenant ${tenantId} back to cell-1 as a new move`,
    );
  });

  it('stops copying back and ends as reverted when a revert claims it in the middle of a step', async () => {
    const tenantId = await tenantIn('cell-1', 'claimed');
    await seed(tenantId, 1);
    let claim: (() => Promise<unknown>) | undefined;
    const engine = world.engine({
      fenceLeadMs: 0,
      settleMs: 0,
      // The revert is recorded while the forget step copies back.
      cellData: cellDataWith({
        copyKeys: async (...args: Parameters<CellData['copyKeys']>) => {
          await claim?.();
          return world.cellData.copyKeys(...args);
        },
      }),
    });
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 600 });
    await world.stepUntil(move.moveId, 'forget', engine);
    await world.cellData.addToJournal(world.cell('cell-2'), move.moveId, [{ tenantId, recordSk: 'ITEM#i-0', at: 0 }]);
    let revert: MoveRecord | undefined;
    claim = async () => {
      claim = undefined;
      revert = await world.engine().revert(move.moveId, { by: 'test', graceSeconds: 0 });
    };
    // Its save is refused (the revert claimed the record): the step hands back, and the next one hands the move over.
    expect(await engine.step(move.moveId)).toEqual({ next: 'continue' });
    expect(await stored(move.moveId)).toMatchObject({ state: 'forget', revertedBy: revert!.moveId });
    expect(await engine.step(move.moveId)).toEqual({ next: 'done', state: 'reverted' });
    expect(await world.cellData.journal(world.cell('cell-2'), move.moveId)).toEqual([]);
    expect(await world.run(revert!.moveId, world.engine({ fenceLeadMs: 0, settleMs: 0 }))).toMatchObject({ state: 'done' });
  });

  it("takes a tenant back to its bucket's cell without a pin", async () => {
    const tenantId = await tenantIn('cell-3', 'back');
    await seed(tenantId, 1);
    const engine = world.engine({ fenceLeadMs: 0, settleMs: 0 });
    const there = await engine.create({ kind: 'tenant', tenantId, to: 'cell-1' }, { by: 'test', graceSeconds: 0 });
    await world.run(there.moveId, engine);
    expect((await world.store.latestVersion())!.overrides[tenantId]).toBe('cell-1');
    const back = await engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, { by: 'test', graceSeconds: 0 });
    await world.run(back.moveId, engine);
    const map = (await world.store.latestVersion())!;
    expect(tenantId in map.overrides).toBe(false);
    expect(routeTenant(map.map, map.overrides, tenantId)).toMatchObject({ cellId: 'cell-3', reason: 'map' });
  });
});

describe('a flip that meets another change', () => {
  it("tries again while another change holds a cell's record as new, and flips once", async () => {
    const tenantId = await tenantIn('cell-2', 'held');
    await seed(tenantId, 1);
    let refusals = 2;
    const claims: string[] = [];
    const { sleeps, engine } = clocked({
      fenceLeadMs: 0,
      settleMs: 0,
      cellData: cellDataWith({
        claimOwnership: async (cell, record) => {
          claims.push(`${cell.cellId} ${record.epoch}`);
          if (cell.cellId === 'cell-2' && refusals > 0) {
            refusals -= 1;
            return false;
          }
          // A cell that neither gives nor takes the tenant: its record catches up later, the move does not wait for it.
          if (cell.cellId === 'cell-3') throw new Error('cell-3 cannot be reached');
          return world.cellData.claimOwnership(cell, record);
        },
      }),
    });
    const versionBefore = (await world.store.latestVersion())!.version;
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-1' }, { by: 'test', graceSeconds: 0 });
    await stepUntil(engine, move.moveId, 'forget');
    const epoch = versionBefore + 1;
    // The target and the source claimed together, three times; then the other cell.
    expect(claims).toEqual([
      `cell-1 ${epoch}`,
      `cell-2 ${epoch}`,
      `cell-1 ${epoch}`,
      `cell-2 ${epoch}`,
      `cell-1 ${epoch}`,
      `cell-2 ${epoch}`,
      `cell-3 ${epoch}`,
    ]);
    expect(await stored(move.moveId)).toMatchObject({ mapVersion: epoch });
    expect((await world.store.latestVersion())!.version).toBe(epoch);
    // A short, random back-off before each new try, so that two flips do not meet again.
    expect(sleeps).toHaveLength(2);
    for (const ms of sleeps) expect(ms >= 20 && ms < 60, `${ms} ms`).toBe(true);
  });

  it('gives up after a minute of lost races, leaving the map as it was, and flips when stepped again', async () => {
    const tenantId = await tenantIn('cell-2', 'patience');
    await seed(tenantId, 1);
    // Each claim refused after a second: a minute is some thirty tries.
    const refusing: ReturnType<typeof clocked> = clocked({
      fenceLeadMs: 0,
      settleMs: 0,
      cellData: cellDataWith({
        claimOwnership: async () => {
          refusing.clock.at += 1_000;
          return false;
        },
      }),
    });
    const { clock, engine } = refusing;
    const versionBefore = (await world.store.latestVersion())!.version;
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, { by: 'test', graceSeconds: 0 });
    await stepUntil(engine, move.moveId, 'final');
    const started = clock.at;
    await expect(engine.step(move.moveId)).rejects.toThrow('the map kept changing under the flip; the move goes on when it is stepped again');
    expect(clock.at - started).toBeGreaterThanOrEqual(60_000);
    expect(clock.at - started).toBeLessThan(62_060);
    expect(await stored(move.moveId)).toMatchObject({ state: 'final', fenceAttempts: 0 });
    expect((await world.store.latestVersion())!.version).toBe(versionBefore);
    expect(await world.engine({ fenceLeadMs: 0, settleMs: 0 }).step(move.moveId)).toEqual({ next: 'wait', seconds: 0 });
    expect(await stored(move.moveId)).toMatchObject({ state: 'forget', mapVersion: versionBefore + 1 });
  });

  it('finishes a flip whose run died before saving it, without flipping again', async () => {
    const tenantId = await tenantIn('cell-1', 'died');
    await seed(tenantId, 2);
    const dying = clocked({
      fenceLeadMs: 0,
      settleMs: 0,
      cellData: cellDataWith({
        removeMarker: async () => {
          throw new Error('died after the flip');
        },
      }),
    });
    const versionBefore = (await world.store.latestVersion())!.version;
    const move = await dying.engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, { by: 'test', graceSeconds: 0 });
    await stepUntil(dying.engine, move.moveId, 'final');
    await expect(dying.engine.step(move.moveId)).rejects.toThrow('died after the flip');
    const died = await stored(move.moveId);
    expect(died.state).toBe('final');
    expect([died.flippedAt, died.mapVersion, died.verified]).toEqual([undefined, undefined, undefined]);
    expect((await world.store.latestVersion())!.version).toBe(versionBefore + 1);

    // An abort asked for now is too late: the map gives the tenant to the target already.
    expect(await world.moves.requestAbort(move.moveId)).toBe(true);
    // And the target serves the tenant: what it takes now is not caught up over from the source.
    const { table } = world.cells['cell-3']!;
    await table.doc.send(
      new PutCommand({
        TableName: table.tableName,
        Item: { pk: tenantKey(tenantId), sk: 'ITEM#after-flip', entity: 'item', tenantId, itemId: 'after-flip' },
      }),
    );
    const { clock, log, engine } = clocked();
    clock.at = died.fenceAt! + 5_000;
    expect(await engine.step(move.moveId)).toEqual({ next: 'wait', seconds: 0 });
    // The source is fenced since, and its journal still there: checked again, nothing changed since the catch-up.
    expect(await stored(move.moveId)).toMatchObject({
      state: 'forget',
      mapVersion: versionBefore + 1,
      flippedAt: clock.at,
      fencedMs: 5_000,
      verified: { records: 0, checksum: '' },
    });
    expect((await world.store.latestVersion())!.version).toBe(versionBefore + 1);
    expect(log).toEqual([`flipped in map version ${versionBefore + 1}; writes were refused for 5000 ms`]);
    expect(await marker('cell-1', move.moveId)).toBeUndefined();
    await advanceUntil(engine, clock, move.moveId, 'done');
    expect(await stored(move.moveId)).toMatchObject({ state: 'done' });
    expect((await records('cell-3', tenantId)).map((r) => r.sk)).toContain('ITEM#after-flip');
  });

  it("finishes a bucket move's flip whose run died before saving it, without flipping again", async () => {
    const tenantId = await tenantIn('cell-1', 'died-bucket');
    await seed(tenantId, 1);
    const bucket = bucketOf(tenantId);
    const dying = clocked({
      fenceLeadMs: 0,
      settleMs: 0,
      cellData: cellDataWith({ removeMarker: async () => Promise.reject(new Error('died after the flip')) }),
    });
    const versionBefore = (await world.store.latestVersion())!.version;
    const move = await dying.engine.create({ kind: 'bucket', first: bucket, last: bucket, to: 'cell-3' }, { by: 'test', graceSeconds: 0 });
    await stepUntil(dying.engine, move.moveId, 'final');
    await expect(dying.engine.step(move.moveId)).rejects.toThrow('died after the flip');
    expect((await world.store.latestVersion())!.map[bucket]).toBe('cell-3');
    expect(await world.engine({ fenceLeadMs: 0, settleMs: 0 }).step(move.moveId)).toEqual({ next: 'wait', seconds: 0 });
    expect(await stored(move.moveId)).toMatchObject({ state: 'forget', mapVersion: versionBefore + 1 });
    expect((await world.store.latestVersion())!.version).toBe(versionBefore + 1);
  });

  it('says at once a failure to write the map that is not a conflict', async () => {
    const tenantId = await tenantIn('cell-1', 'broken');
    await seed(tenantId, 1);
    let writes = 0;
    const failing: ReturnType<typeof clocked> = clocked({
      fenceLeadMs: 0,
      settleMs: 0,
      store: answering(world.store, {
        writeVersion: async () => {
          writes += 1;
          failing.clock.at += 10_000;
          throw new Error('the control table is gone');
        },
      }),
    });
    const move = await failing.engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
    await stepUntil(failing.engine, move.moveId, 'final');
    await expect(failing.engine.step(move.moveId)).rejects.toThrow('the control table is gone');
    expect(writes).toBe(1);
    expect(await world.engine({ fenceLeadMs: 0, settleMs: 0 }).step(move.moveId)).toEqual({ next: 'wait', seconds: 0 });
  });

  it('goes on from the newer version when another change writes the map first', async () => {
    const tenantId = await tenantIn('cell-3', 'race');
    await seed(tenantId, 1);
    const other = await tenantIn('cell-3', 'other');
    let raced = false;
    const store = answering(world.store, {
      writeVersion: async (...args: Parameters<ControlPlaneStore['writeVersion']>) => {
        if (!raced) {
          raced = true;
          // Another change lands first, from the same version: a pin of another tenant.
          const [basedOn, next, cells] = args;
          const { overrides } = (await world.store.latestVersion())!;
          await world.store.writeVersion(basedOn, { ...next, overrides: { ...overrides, [other]: 'cell-2' }, change: 'the other change' }, cells);
        }
        return world.store.writeVersion(...args);
      },
    });
    const versionBefore = (await world.store.latestVersion())!.version;
    const engine = world.engine({ fenceLeadMs: 0, settleMs: 0, store });
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
    await stepUntil(engine, move.moveId, 'forget');
    expect(await stored(move.moveId)).toMatchObject({ mapVersion: versionBefore + 2 });
    const map = (await world.store.latestVersion())!;
    expect(map).toMatchObject({ version: versionBefore + 2, change: `move tenant ${tenantId} from cell-3 to cell-2 (${move.moveId})` });
    // Both changes stand.
    expect(map.overrides).toMatchObject({ [tenantId]: 'cell-2', [other]: 'cell-2' });
  });
});

describe('a bucket move', () => {
  it('moves the tenants its buckets route by the map, pinned ones staying, and those that write after the clone too', async () => {
    const first = await tenantIn('cell-1', 'zz-bucket');
    const bucket = bucketOf(first);
    const pinned = await tenantIn('cell-1', 'pinned', bucket);
    await seed(first, 1);
    await seed(pinned, 1);
    // Pinned to the cell its bucket is in: it stays there when the bucket goes.
    const current = (await world.store.latestVersion())!;
    await world.store.writeVersion(
      current.version,
      { map: current.map, overrides: { ...current.overrides, [pinned]: 'cell-1' }, change: 'pin', by: 'test', createdAt: new Date().toISOString() },
      (await world.store.readRouting()).cells,
    );
    const engine = world.engine({ fenceLeadMs: 0, settleMs: 0 });
    const move = await engine.create({ kind: 'bucket', first: bucket, last: bucket, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
    expect(move).toMatchObject({ kind: 'bucket', subject: `${bucket}`, buckets: [bucket], tenants: [], from: 'cell-1' });
    await engine.step(move.moveId);
    expect(await stored(move.moveId)).toMatchObject({ state: 'catch up', tenants: [first], copied: 1 });
    // The markers name the buckets: a tenant of them that writes later is theirs too.
    for (const [cellId, role] of [
      ['cell-1', 'source'],
      ['cell-2', 'target'],
    ] as const) {
      expect(await marker(cellId, move.moveId)).toMatchObject({ role, buckets: [bucket], tenants: [] });
    }
    // Two tenants write for the first time between the clone and the catch-up: they come after the first, in order.
    const late = [await tenantIn('cell-1', 'b-late', bucket), await tenantIn('cell-1', 'a-late', bucket)];
    for (const tenantId of late) await seed(tenantId, 1);
    await engine.step(move.moveId);
    expect(await stored(move.moveId)).toMatchObject({ tenants: [first, ...[...late].sort()], copied: 3 });
    await engine.step(move.moveId);
    expect(await marker('cell-1', move.moveId)).toMatchObject({
      role: 'source',
      buckets: [bucket],
      tenants: [],
      fenceAt: (await stored(move.moveId)).fenceAt,
    });
    await world.run(move.moveId, engine);

    const map = (await world.store.latestVersion())!;
    expect(map.map[bucket]).toBe('cell-2');
    expect(map.change).toBe(`move bucket ${bucket} from cell-1 to cell-2 (${move.moveId})`);
    for (const tenantId of [first, ...late]) {
      expect(routeTenant(map.map, map.overrides, tenantId).cellId).toBe('cell-2');
      expect(await records('cell-2', tenantId)).toHaveLength(1);
      expect(await records('cell-1', tenantId)).toEqual([]);
    }
    expect(routeTenant(map.map, map.overrides, pinned).cellId).toBe('cell-1');
    expect(await records('cell-1', pinned)).toHaveLength(1);
    expect(await records('cell-2', pinned)).toEqual([]);
  });

  it('moves only the buckets of a range not in the target already, and names a range a-b', async () => {
    const map = (await world.store.latestVersion())!;
    const at = (from: string, next: string) => map.map.findIndex((cellId, b) => cellId === from && map.map[b + 1] === next);
    // A range of a bucket in cell-1 and one in cell-2: the move takes cell-1's to cell-2.
    const mixed = at('cell-1', 'cell-2');
    const engine = world.engine();
    const move = await engine.create({ kind: 'bucket', first: mixed, last: mixed + 1, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
    expect(move).toMatchObject({ subject: `${mixed}-${mixed + 1}`, buckets: [mixed], from: 'cell-1', to: 'cell-2' });
    const inCell2 = at('cell-2', 'cell-2');
    await expect(engine.create({ kind: 'bucket', first: inCell2, last: inCell2 + 1, to: 'cell-2' }, { by: 'test', graceSeconds: 0 })).rejects.toThrow(
      `buckets ${inCell2}-${inCell2 + 1} are already in cell-2`,
    );
    await expect(engine.create({ kind: 'bucket', first: inCell2, last: inCell2, to: 'cell-2' }, { by: 'test', graceSeconds: 0 })).rejects.toThrow(
      `buckets ${inCell2} are already in cell-2`,
    );
    expect(await world.moves.requestAbort(move.moveId)).toBe(true);
    expect(await engine.step(move.moveId)).toEqual({ next: 'done', state: 'aborted' });
  });
});

describe('what a move refuses', () => {
  it('refuses a move that touches the tenants of a running one, and takes one beside it or after it', async () => {
    const engine = world.engine();
    const options = { by: 'test', graceSeconds: 0 };
    const tenantId = await tenantIn('cell-1', 'clash');
    const bucket = bucketOf(tenantId);
    const neighbour = await tenantIn('cell-1', 'clash', bucket);
    const tenantMove = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, options);
    const running = `move ${tenantMove.moveId} (tenant ${tenantId} to cell-2) is running on the same tenants: wait for it, or abort it`;
    await expect(engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, options)).rejects.toThrow(running);
    await expect(engine.create({ kind: 'bucket', first: bucket, last: bucket, to: 'cell-3' }, options)).rejects.toThrow(running);
    // Another tenant of the same bucket moves on its own.
    const beside = await engine.create({ kind: 'tenant', tenantId: neighbour, to: 'cell-3' }, options);

    const map = (await world.store.latestVersion())!;
    const free = map.map.findIndex((cellId, b) => cellId === 'cell-1' && b !== bucket && map.map[b + 1] === 'cell-1' && b + 1 !== bucket);
    const bucketMove = await engine.create({ kind: 'bucket', first: free, last: free + 1, to: 'cell-3' }, options);
    const inRange = await tenantIn('cell-1', 'ranged', free + 1);
    const runningBuckets = `move ${bucketMove.moveId} (bucket ${free}-${free + 1} to cell-3) is running on the same tenants: wait for it, or abort it`;
    await expect(engine.create({ kind: 'tenant', tenantId: inRange, to: 'cell-2' }, options)).rejects.toThrow(runningBuckets);
    await expect(engine.create({ kind: 'bucket', first: free + 1, last: free + 1, to: 'cell-2' }, options)).rejects.toThrow(runningBuckets);

    // Once they end, the same moves are taken.
    for (const move of [tenantMove, beside, bucketMove]) {
      expect(await world.moves.requestAbort(move.moveId)).toBe(true);
      expect(await engine.step(move.moveId)).toEqual({ next: 'done', state: 'aborted' });
    }
    const again = await engine.create({ kind: 'tenant', tenantId, to: 'cell-3' }, options);
    expect(await world.moves.requestAbort(again.moveId)).toBe(true);
    expect(await engine.step(again.moveId)).toEqual({ next: 'done', state: 'aborted' });
  });

  it('refuses what it cannot move: a bad tenant id, buckets out of range or in two cells, an unknown or inactive target', async () => {
    const engine = world.engine();
    const refused = (request: Parameters<MoveEngine['create']>[0]) => engine.create(request, { by: 'test', graceSeconds: 0 });
    for (const tenantId of ['', 'a b', '../x', 'x'.repeat(129), 'ä']) {
      await expect(refused({ kind: 'tenant', tenantId, to: 'cell-2' })).rejects.toThrow(
        new InvalidInputError(`tenant id ${shown(tenantId)} ${ID_RULE}`),
      );
    }
    for (const [first, last] of [
      [-1, 3],
      [9, 3],
      [0, 16_384],
    ] as const) {
      await expect(refused({ kind: 'bucket', first, last, to: 'cell-2' })).rejects.toThrow(
        new InvalidInputError('buckets are 0 to 16383: give one, or a range a-b with a ≤ b'),
      );
    }
    await expect(refused({ kind: 'bucket', first: 0, last: 16_383, to: 'cell-2' })).rejects.toThrow(
      'buckets 0-16383 lie in cell-1 and cell-3: move them one source cell at a time',
    );
    // Named in order, whichever comes first in the range (the bucket move above left a cell-2 bucket before a cell-1 one).
    const map = (await world.store.latestVersion())!;
    const cell2First = map.map.findIndex((cellId, b) => cellId === 'cell-2' && map.map[b + 1] === 'cell-1');
    expect(cell2First).toBeGreaterThanOrEqual(0);
    await expect(refused({ kind: 'bucket', first: cell2First, last: cell2First + 1, to: 'cell-3' })).rejects.toThrow(
      `buckets ${cell2First}-${cell2First + 1} lie in cell-1 and cell-2`,
    );
    await expect(refused({ kind: 'tenant', tenantId: 'fine', to: 'cell-9' })).rejects.toThrow('no cell "cell-9" is registered');
    const inCell1 = (await world.store.latestVersion())!.map.indexOf('cell-1');
    for (const status of ['draining', 'inactive'] as const) {
      await world.store.setStatus('cell-3', status);
      try {
        await expect(refused({ kind: 'bucket', first: inCell1, last: inCell1, to: 'cell-3' })).rejects.toThrow(
          `cell-3 is ${status}: only an active cell takes tenants`,
        );
      } finally {
        await world.store.setStatus('cell-3', 'active');
      }
    }
    const tenantId = await tenantIn('cell-1', 'home');
    await expect(refused({ kind: 'tenant', tenantId, to: 'cell-1' })).rejects.toThrow(`${tenantId} is already in cell-1`);
    expect((await world.moves.list()).some((move) => move.subject === tenantId || move.subject === `${inCell1}`)).toBe(false);
  });

  it('refuses an abort after the flip', async () => {
    const tenantId = await tenantIn('cell-1', 'late-abort');
    await seed(tenantId, 1);
    const engine = world.engine({ fenceLeadMs: 0, settleMs: 0 });
    const move = await engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 60 });
    await stepUntil(engine, move.moveId, 'forget');
    expect(await world.moves.requestAbort(move.moveId)).toBe(false);
    expect((await stored(move.moveId)).abortRequested).toBeUndefined();
    await expect(engine.create({ kind: 'tenant', tenantId, to: 'cell-2' }, { by: 'test', graceSeconds: 0 })).rejects.toThrow(
      `${tenantId} is already in cell-2`,
    );
  });

  it("says what is missing: a bucket map, a source cell's registration, a move", async () => {
    const control = await createCellTable(inject('dynamoEndpoint'), 'bare');
    try {
      const store = new ControlPlaneStore(control.client, control.tableName);
      const moves = new MoveStore(control.doc, control.tableName);
      const engine = new MoveEngine({ store, moves, cellData: world.cellData });
      const deploy = new DeployTimeCalls(control.client, control.tableName);
      await deploy.register(world.cells['cell-2']!.registration);
      await expect(engine.create({ kind: 'tenant', tenantId: 't', to: 'cell-2' }, { by: 'test', graceSeconds: 0 })).rejects.toThrow(
        'the control plane has no bucket map yet: deploy the control-plane stack (or start npm start) first',
      );
      // The map names cell-1, which never registered.
      await deploy.seed(['cell-1', 'cell-2']);
      const map = (await store.latestVersion())!;
      const inCell1 = map.map.indexOf('cell-1');
      await expect(engine.create({ kind: 'bucket', first: inCell1, last: inCell1, to: 'cell-2' }, { by: 'test', graceSeconds: 0 })).rejects.toThrow(
        "cell-1 is not registered: its tenants' data cannot be read",
      );
      await expect(engine.step('nope')).rejects.toThrow(new NotFoundError('no move "nope"'));
      // A move whose source left the registry after it started.
      await deploy.register(world.cells['cell-1']!.registration);
      const move = await engine.create({ kind: 'bucket', first: inCell1, last: inCell1, to: 'cell-2' }, { by: 'test', graceSeconds: 0 });
      await deploy.deregister('cell-1');
      await expect(engine.step(move.moveId)).rejects.toThrow('cell-1 is not registered');
    } finally {
      await control.drop();
    }
  });
});

describe('the move store', () => {
  it('lists moves newest first, refuses an abort for a move it does not have, and never saves over an abort asked for', async () => {
    const control = await createCellTable(inject('dynamoEndpoint'), 'moves');
    try {
      const moves = new MoveStore(control.doc, control.tableName);
      const record = (moveId: string, createdAt: number): MoveRecord => ({
        moveId,
        kind: 'tenant',
        subject: 't',
        buckets: [],
        tenants: ['t'],
        from: 'cell-1',
        to: 'cell-2',
        state: 'clone',
        steps: {},
        copied: 0,
        fenceAttempts: 0,
        graceSeconds: 0,
        by: 'test',
        createdAt,
        updatedAt: createdAt,
      });
      for (const [moveId, at] of [
        ['b', 3],
        ['a', 1],
        ['c', 2],
      ] as const)
        await moves.create(record(moveId, at));
      expect((await moves.list()).map((move) => move.moveId)).toEqual(['b', 'c', 'a']);
      await expect(moves.create(record('a', 4))).rejects.toThrow();
      expect(await moves.requestAbort('nope')).toBe(false);
      expect(await moves.get('nope')).toBeUndefined();

      // The engine's copy, read before the operator asked for the abort, saved after it.
      const read = (await moves.get('a'))!;
      expect(await moves.requestAbort('a')).toBe(true);
      await moves.save({ ...read, state: 'catch up', checkpoint: { tenant: 1 } });
      expect(await moves.get('a')).toMatchObject({ state: 'catch up', abortRequested: true, checkpoint: { tenant: 1 } });
      // What the engine dropped is removed from the record.
      await moves.save({ ...read, state: 'fence', fenceAt: 5 });
      expect(await moves.get('a')).toMatchObject({ fenceAt: 5 });
      expect((await moves.get('a'))!.checkpoint).toBeUndefined();
      await moves.save({ ...read, state: 'fence' });
      expect((await moves.get('a'))!.fenceAt).toBeUndefined();
      await moves.save({ ...read, checkpoint: { tenant: 2 }, fenceAt: 7 });
      expect(await moves.get('a')).toMatchObject({ checkpoint: { tenant: 2 }, fenceAt: 7 });
      // An abort is taken before the flip only.
      const abortable = async (state: MoveRecord['state'], flippedAt?: number) => {
        await moves.save({ ...read, state, flippedAt });
        return moves.requestAbort('a');
      };
      for (const state of ['clone', 'catch up', 'fence', 'final'] as const) expect(await abortable(state), state).toBe(true);
      expect(await abortable('final', 1)).toBe(false);
      for (const state of ['forget', 'done', 'aborted', 'failed'] as const) expect(await abortable(state), state).toBe(false);
      await expect(moves.save(record('nope', 1))).rejects.toThrow();
      // Only a refused condition is a "no": any other failure is said.
      await expect(new MoveStore(control.doc, 'no-such-table').requestAbort('a')).rejects.toThrow(/non-existent table|not found/i);

      // Every read is strongly consistent: a step reads what the step before it saved.
      const commands = recordCommands(control.doc);
      try {
        await moves.get('a');
        await moves.list();
      } finally {
        commands.stop();
      }
      expect(commands.sent.map(({ name, input }) => [name, input.ConsistentRead])).toEqual([
        ['GetItemCommand', true],
        ['QueryCommand', true],
      ]);
    } finally {
      await control.drop();
    }
  });
});
