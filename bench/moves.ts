/**
 * Moves through the local runtime's move workflow, as `cells move --local`
 * runs them: the copy rate of one big tenant while it takes writes, and the
 * fenced window (writes refused) of many small moves.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchWriteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { connectLocal, type ControlPlaneConnection } from '../control-plane/connect.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../control-plane/local-target.ts';
import { FINISHED, MoveEngine, type MoveRecord } from '../control-plane/moves.ts';
import { bucketOf, routeTenant } from '../control-plane/routing.ts';
import { DIRECTORY_ENTITY, directoryKey, itemKey } from '../layers/shared/src/contracts/cell-table.ts';
import { quantile } from './stats.ts';

export interface MoveFigures {
  readonly bigTenant: {
    readonly items: number;
    /** Writes acknowledged by the front door while the move ran. */
    readonly writesDuringMove: number;
    readonly cloneRecordsPerSecond: number;
    readonly moveSeconds: number;
    readonly fencedMs: number;
  };
  readonly smallMoves: { readonly moves: number; readonly concurrency: number; readonly itemsEach: number; readonly fencedP50Ms: number; readonly fencedP99Ms: number; readonly fencedMaxMs: number; readonly refusedWrites: number };
}

interface Target {
  readonly url: string;
  readonly dynamoEndpoint: string;
  readonly stateFile: string;
  /** The cell tables, by cell id. */
  readonly cellTables: Record<string, string>;
  readonly token: (tenantId: string) => Promise<string>;
}

/**
 * Each writer's pace: a busy tenant, not a flood. Unpaced writers on two
 * cores would measure how the machine shares its CPU, not the move.
 */
export const WRITES_PER_SECOND = 20;

const widget = (n: number) => ({ title: `Widget ${n}`, price: { amount: 100 + n, currency: 'EUR' }, stock: 10, attributes: {} });

export async function benchMoves(target: Target, plan: { bigTenantItems: number; smallMoves: number; concurrency: number }, say: (line: string) => void): Promise<MoveFigures> {
  const client = new DynamoDBClient({ endpoint: target.dynamoEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const doc = DynamoDBDocumentClient.from(client);
  const connection = connectLocal(target.stateFile);
  try {
    const engine = new MoveEngine({ store: connection.store, moves: connection.moves, cellData: connection.cellTables });
    const cells = Object.keys(target.cellTables);

    // One big tenant, written straight into its cell as the API writes items, then moved while a writer keeps writing.
    const big = `bench-big-${randomUUID().slice(0, 8)}`;
    const from = await ownerOf(connection, big);
    await seed(doc, target.cellTables[from]!, big, plan.bigTenantItems);
    say(`  ${plan.bigTenantItems.toLocaleString('en-US')} items of ${big} in ${from}`);
    const writer = keepWriting(target, big, 2, WRITES_PER_SECOND);
    const moved = await runMove(connection, engine, big, cells.find((c) => c !== from)!);
    const { acknowledged } = await writer.stop();
    const clone = moved.steps.clone!;
    const bigTenant = {
      items: plan.bigTenantItems,
      writesDuringMove: acknowledged,
      cloneRecordsPerSecond: plan.bigTenantItems / ((clone.endedAt! - clone.startedAt) / 1_000),
      moveSeconds: ((moved.steps.forget?.endedAt ?? moved.updatedAt) - moved.createdAt) / 1_000,
      fencedMs: moved.fencedMs!,
    };
    say(`  copied at ${Math.round(bigTenant.cloneRecordsPerSecond)} records/s; writes refused for ${bigTenant.fencedMs} ms`);

    // Many small tenants, each moved while a writer keeps writing to it, a few moves at a time.
    const itemsEach = 50;
    const fenced: number[] = [];
    let refusedWrites = 0;
    const tenants = Array.from({ length: plan.smallMoves }, (_, i) => `bench-small-${i}-${randomUUID().slice(0, 8)}`);
    for (let start = 0; start < tenants.length; start += plan.concurrency) {
      await Promise.all(
        tenants.slice(start, start + plan.concurrency).map(async (tenantId) => {
          const owner = await ownerOf(connection, tenantId);
          await seed(doc, target.cellTables[owner]!, tenantId, itemsEach);
          const load = keepWriting(target, tenantId, 1, WRITES_PER_SECOND);
          const move = await runMove(connection, engine, tenantId, cells.find((c) => c !== owner)!);
          const { refused } = await load.stop();
          refusedWrites += refused;
          fenced.push(move.fencedMs!);
        }),
      );
      say(`  ${Math.min(start + plan.concurrency, tenants.length)}/${tenants.length} small moves`);
    }
    return {
      bigTenant,
      smallMoves: {
        moves: tenants.length,
        concurrency: plan.concurrency,
        itemsEach,
        fencedP50Ms: quantile(fenced, 0.5),
        fencedP99Ms: quantile(fenced, 0.99),
        fencedMaxMs: Math.max(...fenced),
        refusedWrites,
      },
    };
  } finally {
    connection.close();
    client.destroy();
  }
}

async function ownerOf(connection: ControlPlaneConnection, tenantId: string): Promise<string> {
  const version = (await connection.store.latestVersion())!;
  return routeTenant(version.map, version.overrides, tenantId).cellId;
}

async function runMove(connection: ControlPlaneConnection, engine: MoveEngine, tenantId: string, to: string): Promise<MoveRecord> {
  const move = await engine.create({ kind: 'tenant', tenantId, to }, { by: 'bench', graceSeconds: 0 });
  await connection.runner!.start(move);
  for (;;) {
    const now = (await connection.moves.get(move.moveId))!;
    if (FINISHED.has(now.state)) {
      if (now.state !== 'done') throw new Error(`move ${move.moveId} ended ${now.state}: ${now.error ?? ''}`);
      return now;
    }
    await sleep(200);
  }
}

/** Items as the API stores them (version 1), and the tenant's directory entry. */
async function seed(doc: DynamoDBDocumentClient, tableName: string, tenantId: string, count: number): Promise<void> {
  const at = new Date().toISOString();
  await doc.send(new PutCommand({ TableName: tableName, Item: { ...directoryKey(bucketOf(tenantId), tenantId), entity: DIRECTORY_ENTITY, tenantId, bucket: bucketOf(tenantId), recordedAt: at } }));
  const items = Array.from({ length: count }, (_, n) => ({
    ...itemKey(tenantId, `item-${String(n).padStart(6, '0')}`),
    entity: 'item',
    tenantId,
    itemId: `item-${String(n).padStart(6, '0')}`,
    ...widget(n),
    version: 1,
    incarnation: randomUUID(),
    createdAt: at,
    updatedAt: at,
  }));
  const batches = [];
  for (let start = 0; start < items.length; start += 25) batches.push(items.slice(start, start + 25));
  for (let i = 0; i < batches.length; i += 8) {
    await Promise.all(
      batches.slice(i, i + 8).map(async (batch) => {
        let pending: Array<Record<string, unknown>> = batch.map((Item) => ({ PutRequest: { Item } }));
        while (pending.length) {
          const { UnprocessedItems } = await doc.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending as never } }));
          pending = (UnprocessedItems?.[tableName] ?? []) as typeof pending;
        }
      }),
    );
  }
}

/** PUTs to the tenant's items through the front door, `writers` at a time, each at most `perSecond`, until stopped. */
function keepWriting(target: Target, tenantId: string, writers: number, perSecond: number) {
  let stopped = false;
  let acknowledged = 0;
  let refused = 0;
  const loops = Array.from({ length: writers }, async (_, w) => {
    const token = await target.token(tenantId);
    for (let n = 0; !stopped; n += 1) {
      const started = Date.now();
      const response = await fetch(`${target.url}/tenants/${tenantId}/items/live-${w}-${n % 20}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(widget(n)),
      });
      await response.arrayBuffer();
      if (response.status < 300) acknowledged += 1;
      else if (response.status === 503) {
        refused += 1;
        await sleep(Number(response.headers.get('retry-after') ?? 1) * 100);
      } else throw new Error(`PUT during a move answered ${response.status}`);
      await sleep(Math.max(0, 1_000 / perSecond - (Date.now() - started)));
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return { acknowledged, refused };
    },
  };
}
