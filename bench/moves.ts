/**
 * Moves through the local runtime's move workflow, as `cells move --local`
 * runs them, by tenant size: each tenant moved back and forth while a writer
 * keeps writing to it. The copy rate against the raw load of the same
 * records, what the journal's catch-ups read per change, and the fenced
 * window (writes refused), which should not grow with the tenant.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchWriteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { connectLocal, type ControlPlaneConnection } from '../control-plane/connect.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../control-plane/local-target.ts';
import { FINISHED, type MoveRecord } from '../control-plane/move-record.ts';
import { MoveEngine } from '../control-plane/move-engine.ts';
import { bucketOf, routeTenant } from '../routing/routing.ts';
import { DIRECTORY_ENTITY, directoryKey, itemKey } from '../layers/shared/src/contracts/cell-table.ts';
import { quantile } from './stats.ts';

/** The moves of tenants of one size, each while a writer keeps writing to it. */
export interface MoveSizeFigures {
  readonly items: number;
  readonly moves: number;
  /**
   * The raw BatchWriteItem load of the tenant's records (up to RAW_SAMPLE of
   * them, under another key) into the table the move copies to, just before
   * each move: records per second, median over the moves.
   */
  readonly rawRecordsPerSecond: number;
  /** The clone step's copy rate (records ÷ its time), median over the moves. */
  readonly cloneRecordsPerSecond: number;
  /** Each move's copy rate ÷ the raw load measured just before it, median. */
  readonly copyToRaw: number;
  /** Records read by the catch-ups from the journal per change (journal entry), over all the moves. */
  readonly readsPerChange: number;
  readonly changes: number;
  readonly fencedP50Ms: number;
  readonly fencedP99Ms: number;
  /**
   * The fenced window's p99 of a tenant of CONTROL_ITEMS records moved the
   * same way right after each of these moves (this size's own, for the
   * smallest): DynamoDB Local slows down over a run, so only side by side
   * does the big tenant's window compare with a small one's.
   */
  readonly controlFencedP99Ms: number;
  /** Records read inside the fence, per move (median). */
  readonly fencedReads: number;
  /** From the move's creation to its flip (what the operator waits for), median. */
  readonly moveSeconds: number;
  readonly acknowledgedWrites: number;
  readonly refusedWrites: number;
}

export interface MoveFigures {
  readonly bySize: MoveSizeFigures[];
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

export async function benchMoves(
  target: Target,
  plan: { sizes: ReadonlyArray<{ readonly items: number; readonly moves: number }> },
  say: (line: string) => void,
): Promise<MoveFigures> {
  const client = new DynamoDBClient({ endpoint: target.dynamoEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const doc = DynamoDBDocumentClient.from(client);
  const connection = connectLocal(target.stateFile);
  try {
    const engine = new MoveEngine({ store: connection.store, moves: connection.moves, cellData: connection.cellData });
    const cells = Object.keys(target.cellTables);
    const bySize: MoveSizeFigures[] = [];
    let control: { tenantId: string; at: string } | undefined;
    for (const { items, moves } of plan.sizes) {
      // One tenant of this size, written straight into its cell as the API writes items (the raw load), then moved back and forth.
      const tenantId = `bench-${items}-${randomUUID().slice(0, 8)}`;
      let at = await ownerOf(connection, tenantId);
      const seeding = performance.now();
      await seed(doc, target.cellTables[at]!, tenantId, items);
      say(`  ${items.toLocaleString('en-US')} records written to ${at} in ${((performance.now() - seeding) / 1_000).toFixed(1)} s`);
      const done: MoveRecord[] = [];
      const controls: MoveRecord[] = [];
      const raw: number[] = [];
      let acknowledgedWrites = 0;
      let refusedWrites = 0;
      for (let n = 0; n < moves; n += 1) {
        const to = cells.find((c) => c !== at)!;
        // The same records loaded raw into the same table just before the clone writes there: DynamoDB Local's pace drifts
        // over a run (every stream record it keeps slows its writes), so only side by side is the ratio fair.
        const sample = `${tenantId}-raw`;
        const started = performance.now();
        const keys = await seed(doc, target.cellTables[to]!, sample, Math.min(items, RAW_SAMPLE));
        raw.push(Math.min(items, RAW_SAMPLE) / ((performance.now() - started) / 1_000));
        await writeAll(
          doc,
          target.cellTables[to]!,
          keys.map((Key) => ({ DeleteRequest: { Key } })),
        );
        const writer = keepWriting(target, tenantId, 1, WRITES_PER_SECOND);
        const moved = await runMove(connection, engine, tenantId, to, say);
        const { acknowledged, refused } = await writer.stop();
        acknowledgedWrites += acknowledged;
        refusedWrites += refused;
        done.push(moved);
        at = to;
        if (items > CONTROL_ITEMS) {
          control ??= await controlTenant(connection, doc, target);
          const back = cells.find((c) => c !== control!.at)!;
          const controlWriter = keepWriting(target, control.tenantId, 1, WRITES_PER_SECOND);
          controls.push(await runMove(connection, engine, control.tenantId, back, say));
          await controlWriter.stop();
          control.at = back;
        }
      }
      const clone = done.map((m) => (m.copied > 0 ? items / ((m.steps.clone!.endedAt! - m.steps.clone!.startedAt) / 1_000) : 0));
      const changes = done.reduce((sum, m) => sum + (m.delta?.changes ?? 0), 0);
      const reads = done.reduce((sum, m) => sum + (m.delta?.reads ?? 0), 0);
      const fenced = done.map((m) => m.fencedMs!);
      const figures: MoveSizeFigures = {
        items,
        moves,
        rawRecordsPerSecond: quantile(raw, 0.5),
        cloneRecordsPerSecond: quantile(clone, 0.5),
        copyToRaw: quantile(
          clone.map((rate, i) => rate / raw[i]!),
          0.5,
        ),
        readsPerChange: changes === 0 ? 0 : reads / changes,
        changes,
        fencedP50Ms: quantile(fenced, 0.5),
        fencedP99Ms: quantile(fenced, 0.99),
        controlFencedP99Ms: controls.length
          ? quantile(
              controls.map((m) => m.fencedMs!),
              0.99,
            )
          : quantile(fenced, 0.99),
        fencedReads: quantile(
          done.map((m) => m.fenced?.reads ?? 0),
          0.5,
        ),
        moveSeconds: quantile(
          done.map((m) => ((m.flippedAt ?? m.updatedAt) - m.createdAt) / 1_000),
          0.5,
        ),
        acknowledgedWrites,
        refusedWrites,
      };
      say(
        `  ${items.toLocaleString('en-US')} items, ${moves} moves: copied at ${Math.round(figures.cloneRecordsPerSecond)} records/s (raw load ${Math.round(figures.rawRecordsPerSecond)}); writes refused for ${Math.round(figures.fencedP50Ms)} ms (p50)`,
      );
      bySize.push(figures);
    }
    return { bySize };
  } finally {
    connection.close();
    client.destroy();
  }
}

/** The small tenant moved beside bigger ones, for their fenced windows to be compared with. */
export const CONTROL_ITEMS = 50;

async function controlTenant(
  connection: ControlPlaneConnection,
  doc: DynamoDBDocumentClient,
  target: Target,
): Promise<{ tenantId: string; at: string }> {
  const tenantId = `bench-control-${randomUUID().slice(0, 8)}`;
  const at = await ownerOf(connection, tenantId);
  await seed(doc, target.cellTables[at]!, tenantId, CONTROL_ITEMS);
  return { tenantId, at };
}

async function ownerOf(connection: ControlPlaneConnection, tenantId: string): Promise<string> {
  const version = (await connection.store.latestVersion())!;
  return routeTenant(version.map, version.overrides, tenantId).cellId;
}

/** Polls between two progress lines of a long move (at 200 ms a poll, 30 s). */
const POLLS_PER_PROGRESS_LINE = 150;

async function runMove(
  connection: ControlPlaneConnection,
  engine: MoveEngine,
  tenantId: string,
  to: string,
  say: (line: string) => void,
): Promise<MoveRecord> {
  const move = await engine.create({ kind: 'tenant', tenantId, to }, { by: 'bench', graceSeconds: 0 });
  await connection.runner!.start(move);
  for (let polls = 1; ; polls += 1) {
    const now = (await connection.moves.get(move.moveId))!;
    // Done means forgotten: the next move of the tenant finds no copy of it left behind.
    if (FINISHED.has(now.state)) {
      if (now.state !== 'done') throw new Error(`move ${move.moveId} ended ${now.state}: ${now.error ?? ''}`);
      return now;
    }
    if (polls % POLLS_PER_PROGRESS_LINE === 0) {
      const running = (await connection.runner!.runningMoves?.())?.has(move.moveId) ?? true;
      const age = Math.round((Date.now() - now.createdAt) / 1_000);
      const copied = now.copied.toLocaleString('en-US');
      say(
        `    move ${move.moveId} of ${tenantId}: ${now.state}, ${copied} records copied, ${age} s${running ? '' : '; its workflow stopped: started again'}`,
      );
      // As `cells apply` resumes: a workflow that spent its retries is started again from the move's checkpoint.
      if (!running) await connection.runner!.start(now);
    }
    await sleep(200);
  }
}

/** At most this many records are loaded raw beside each move: the rate per record needs no more. */
const RAW_SAMPLE = 10_000;

/** Items as the API stores them (version 1), and the tenant's directory entry; their keys. */
async function seed(doc: DynamoDBDocumentClient, tableName: string, tenantId: string, count: number): Promise<Array<Record<string, unknown>>> {
  const at = new Date().toISOString();
  await doc.send(
    new PutCommand({
      TableName: tableName,
      Item: { ...directoryKey(bucketOf(tenantId), tenantId), entity: DIRECTORY_ENTITY, tenantId, bucket: bucketOf(tenantId), recordedAt: at },
    }),
  );
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
  await writeAll(
    doc,
    tableName,
    items.map((Item) => ({ PutRequest: { Item } })),
  );
  return items.map(({ pk, sk }) => ({ pk, sk }));
}

/** BatchWriteItem, 25 requests a call and 8 calls at once, as a move's copy writes. */
async function writeAll(doc: DynamoDBDocumentClient, tableName: string, requests: Array<Record<string, unknown>>): Promise<void> {
  const batches = [];
  for (let start = 0; start < requests.length; start += 25) batches.push(requests.slice(start, start + 25));
  for (let i = 0; i < batches.length; i += 8) {
    await Promise.all(
      batches.slice(i, i + 8).map(async (batch) => {
        let pending = batch;
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
