import { describe, expect, inject, it } from 'vitest';
import { encodeBuckets } from '../../../routing/bucket-codec.ts';
import { CellOperations } from '../../../control-plane/operations.ts';
import { evenSplit } from '../../../routing/routing.ts';
import { ControlPlaneStore, type RoutingState } from '../../../control-plane/store.ts';
import { AwsApiError } from '../../../functions/router/aws-api.ts';
import { RoutingCache, snapshotFromShipped } from '../../../functions/router/routing-cache.ts';
import type { ShippedRouting } from '../../../layers/shared/src/contracts/shipped-routing.ts';
import { CONTROL_PLANE_READ } from '../../../layers/shared/src/sdk-timeouts.ts';
import { startHangingServer } from '../../support/hanging-server.ts';
import { createCellTable } from '../../support/tables.ts';
import { DeployTimeCalls } from '../../support/deploy-time.ts';
import { routerReads } from '../../support/aws-api.ts';

const shippedJson = JSON.stringify({
  version: 1,
  functions: { 'cell-1': 'item-master-dev-cell-1-api', 'cell-2': 'item-master-dev-cell-2-api' },
  ...encodeBuckets(evenSplit(['cell-1', 'cell-2'])),
  overrides: {},
} satisfies ShippedRouting);
const shipped = snapshotFromShipped(shippedJson);

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const state = (version: number): RoutingState => ({
  cells: [{ cellId: 'cell-1', status: 'active', weight: 1, apiFunctionArn: 'arn:cell-1', tableName: 't1' }],
  version: { version, map: evenSplit(['cell-1']), overrides: {}, change: '', by: '' },
  quotas: [{ tenantId: 'busy', rate: 5, burst: 10, updatedAt: '', by: '' }],
});

describe('RoutingCache', () => {
  it('reads the store on first use and serves that copy for the refresh interval', async () => {
    const time = clock();
    let reads = 0;
    const cache = new RoutingCache({ load: async () => state(++reads + 1), shipped, refreshMs: 10_000, now: time.now });
    const first = await cache.current();
    expect(first).toMatchObject({ version: 2, source: 'store' });
    // The quota overrides travel with the map: no read per request.
    expect(first.quotas.get('busy')).toEqual({ rate: 5, burst: 10 });
    expect(shipped.quotas.size).toBe(0);
    time.advance(9_999);
    expect((await cache.current()).version).toBe(2);
    time.advance(1);
    // Due: the request that finds it so is served the copy in hand and starts the read.
    expect((await cache.current()).version).toBe(2);
    await cache.settled();
    expect((await cache.current()).version).toBe(3);
    expect(reads).toBe(2);
  });

  it('re-reads for misdirected requests at once, one read for all of them, after any read already in flight', async () => {
    const time = clock();
    let reads = 0;
    let release: () => void = () => undefined;
    const cache = new RoutingCache({
      load: async () => {
        reads += 1;
        if (reads === 2) await new Promise<void>((resolve) => (release = resolve));
        return state(reads + 1);
      },
      shipped,
      refreshMs: 10_000,
      now: time.now,
    });
    expect((await cache.current()).version).toBe(2);
    time.advance(10_000);
    await cache.current(); // a background read starts, and hangs until released
    const refused = [cache.fresh(), cache.fresh(), cache.fresh()];
    release();
    const versions = (await Promise.all(refused)).map((snapshot) => snapshot.version);
    // The read in flight may predate the change: one more read, shared, follows it.
    expect(versions).toEqual([4, 4, 4]);
    expect(reads).toBe(3);
    // That shared read is over: the next refusal reads again.
    expect((await cache.fresh()).version).toBe(5);
    expect(reads).toBe(4);
  });

  it('keeps routing with the last good copy when the store fails after init, and retries only after the interval', async () => {
    const time = clock();
    let failing = false;
    let reads = 0;
    const errors: unknown[] = [];
    const cache = new RoutingCache({
      load: async () => {
        reads += 1;
        if (failing) throw new Error('store down');
        // After the outage the map has moved on: the cache must take what it reads, not keep its copy.
        return state(reads === 1 ? 5 : 6);
      },
      shipped,
      refreshMs: 1_000,
      now: time.now,
      onRefreshError: (error, serving) => errors.push([error, serving.version]),
    });
    await cache.current();
    failing = true;
    time.advance(1_000);
    for (let n = 0; n < 20; n += 1) {
      expect(await cache.current()).toMatchObject({ version: 5, source: 'store' });
      await cache.settled();
    }
    expect(reads).toBe(2); // one failed read, not one per request
    expect(errors).toHaveLength(1);
    failing = false;
    time.advance(1_000);
    expect((await cache.current()).version).toBe(5);
    await cache.settled();
    expect(reads).toBe(3);
    expect(await cache.current()).toMatchObject({ version: 6, source: 'store' });
  });

  it('shares one read between concurrent requests', async () => {
    let reads = 0;
    const cache = new RoutingCache({
      load: async () => {
        reads += 1;
        await new Promise((resolve) => setTimeout(resolve, 20));
        return state(2);
      },
      shipped,
      refreshMs: 1_000,
    });
    await Promise.all(Array.from({ length: 10 }, () => cache.current()));
    expect(reads).toBe(1);
  });

  it('never makes a request wait on a read after the cold start, even one that never ends', async () => {
    const time = clock();
    let reads = 0;
    const cache = new RoutingCache({
      load: () => (++reads === 1 ? Promise.resolve(state(2)) : new Promise<RoutingState>(() => undefined)),
      shipped,
      refreshMs: 1_000,
      now: time.now,
    });
    expect((await cache.current()).version).toBe(2);
    time.advance(1_000);
    // Served before the event loop turns: no request awaits the hung read.
    const answered = await Promise.race([cache.current(), new Promise((resolve) => setImmediate(() => resolve('waited')))]);
    expect(answered).toMatchObject({ version: 2, source: 'store' });
    for (let n = 0; n < 5; n += 1) {
      time.advance(5_000);
      expect(await Promise.race([cache.current(), new Promise((resolve) => setImmediate(() => resolve('waited')))])).toMatchObject({ version: 2 });
    }
    expect(reads).toBe(2); // the hung read is not started again beside itself
  });

  it('tells of every successful read, with the copy now in force, and of no failed one', async () => {
    const time = clock();
    const versions: number[] = [];
    let next = 5;
    let failing = false;
    const cache = new RoutingCache({
      load: async () => {
        if (failing) throw new Error('store down');
        return state(next++);
      },
      shipped,
      refreshMs: 1_000,
      now: time.now,
      onRefresh: (snapshot) => versions.push(snapshot.version),
      onRefreshError: () => undefined,
    });
    await cache.current();
    time.advance(1_000);
    await cache.current();
    await cache.settled();
    failing = true;
    time.advance(1_000);
    await cache.current();
    await cache.settled();
    expect(versions).toEqual([5, 6]);
  });

  it('treats a store with no map version yet as a failed read', async () => {
    const errors: unknown[] = [];
    const empty = new RoutingCache({
      load: async () => ({ cells: [], version: undefined, quotas: [] }),
      shipped,
      refreshMs: 1_000,
      onRefreshError: (e) => errors.push(e),
    });
    expect((await empty.current()).source).toBe('shipped');
    expect(String(errors[0])).toMatch(/no map version/);
  });
});

describe('the router at a cold start', () => {
  it('serves the shipped map when the store is unreachable', async () => {
    // A closed loopback port: connection refused at once.
    const errors: unknown[] = [];
    const store = routerReads('http://127.0.0.1:9', 'control', { ...CONTROL_PLANE_READ, maxAttempts: 1 });
    const cache = new RoutingCache({ load: () => store.readRouting(), shipped, refreshMs: 1_000, onRefreshError: (e) => errors.push(e) });
    const snapshot = await cache.current();
    expect(snapshot).toMatchObject({ version: 1, source: 'shipped' });
    expect(snapshot.map).toEqual(evenSplit(['cell-1', 'cell-2']));
    expect(snapshot.cells.get('cell-2')).toEqual({ cellId: 'cell-2', status: 'active', functionName: 'item-master-dev-cell-2-api' });
    expect(errors).toHaveLength(1);
  });

  it('gives up on a control plane that accepts connections and never answers, and serves the shipped map', async () => {
    const hung = await startHangingServer();
    try {
      const errors: unknown[] = [];
      const store = routerReads(hung.url, 'control');
      const cache = new RoutingCache({ load: () => store.readRouting(), shipped, refreshMs: 1_000, onRefreshError: (e) => errors.push(e) });
      expect(await cache.current()).toMatchObject({ version: 1, source: 'shipped' });
      // It was the request timeout that ended the read.
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(AwsApiError);
      expect(errors[0]).toMatchObject({ status: 0, code: 'ETIMEDOUT' });
      // Each of the three reads (registry, map version, quotas) waited for an answer on every attempt, each on its own connection.
      expect(hung.connections()).toBe(3 * CONTROL_PLANE_READ.maxAttempts);
    } finally {
      await hung.close();
    }
  });

  it('picks up a map update from the store within the refresh interval', async () => {
    const control = await createCellTable(inject('dynamoEndpoint'), 'control');
    try {
      const store = new ControlPlaneStore(control.client, control.tableName);
      const deploy = new DeployTimeCalls(control.client, control.tableName);
      await deploy.seed(['cell-1', 'cell-2']);
      for (const cellId of ['cell-1', 'cell-2']) {
        await deploy.register({ cellId, weight: 1, apiFunctionArn: `arn:${cellId}`, tableName: `${cellId}-table` });
      }
      const time = clock();
      const reads = routerReads(inject('dynamoEndpoint'), control.tableName);
      const cache = new RoutingCache({ load: () => reads.readRouting(), shipped, refreshMs: 5_000, now: time.now });
      expect(await cache.current()).toMatchObject({ version: 1, source: 'store', overrides: {} });

      const noData = { hasData: async () => false, writeOwnership: async () => true, tenantsIn: async () => [] };
      await new CellOperations({ store, cellData: noData, by: 'test', fenceWaitMs: 0 }).pin('tenant-x', 'cell-2');
      time.advance(4_999);
      expect((await cache.current()).version).toBe(1);
      time.advance(1);
      await cache.current();
      await cache.settled();
      expect(await cache.current()).toMatchObject({ version: 2, overrides: { 'tenant-x': 'cell-2' } });
    } finally {
      await control.drop();
    }
  });
});

describe('snapshotFromShipped', () => {
  it.each([undefined, '', 'nope'])('refuses %s as no JSON, naming the variable', (json) => {
    expect(() => snapshotFromShipped(json)).toThrow(/^SHIPPED_ROUTING must be the JSON routing snapshot the deploy ships$/);
  });
  it.each(['{}', JSON.stringify({ version: 1, functions: {}, cells: ['a'], buckets: 'x' })])('refuses %s', (json) => {
    expect(() => snapshotFromShipped(json)).toThrow();
  });
});
