import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ALBResult } from 'aws-lambda';
import { CellData } from '../../control-plane/cell-data.ts';
import type { MoveRecord } from '../../control-plane/move-record.ts';
import { MoveStore } from '../../control-plane/move-store.ts';
import { MoveEngine, type MoveEngineDeps } from '../../control-plane/move-engine.ts';
import type { CellRecord, CellRegistration, MapVersion } from '../../routing/records.ts';
import { routeTenant } from '../../routing/routing.ts';
import { ControlPlaneStore } from '../../control-plane/store.ts';
import { createApp, MISDIRECTED } from '../../functions/cell-api/app.ts';
import { MAP_CATCH_UP_MS } from '../../functions/router/router.ts';
import { TenantDirectory } from '../../functions/cell-api/directory.ts';
import { cellEntities } from '../../functions/cell-api/entities.ts';
import { OrderStore } from '../../functions/cell-api/order-store.ts';
import { OwnershipCache } from '../../functions/cell-api/ownership.ts';
import { ChangeJournal } from '../../functions/cell-api/change-journal.ts';
import { WriteDeadlines } from '../../functions/cell-api/write-deadline.ts';
import { orderKey } from '../../layers/shared/src/contracts/cell-table.ts';
import { createObservability } from '../../layers/shared/src/observability.ts';
import { albEvent, lambdaContext } from './alb.ts';
import { DeployTimeCalls } from './deploy-time.ts';
import { createCellTable, localClient } from './tables.ts';

type Table = Awaited<ReturnType<typeof createCellTable>>;

/** More steps than any move in the tests takes. */
const MAX_STEPS = 200;

export interface Answer {
  readonly status: number;
  readonly body: any;
  readonly headers: Record<string, string>;
  /** The cell that answered. */
  readonly cellId: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

/**
 * A control plane and cells as a deploy leaves them, each cell's API in
 * process over DynamoDB Local (ownership check, directory, write deadline,
 * as the function wires them), and a router that routes by its own copy of
 * the map and, like the real one, re-reads it and retries once on 421. The
 * order saga is a stand-in that marks an order CONFIRMED in its own cell
 * once `saga.gate` lets it.
 */
export async function cellWorld(endpoint: string, cellIds = ['cell-1', 'cell-2', 'cell-3']) {
  const tables: Table[] = [];
  const control = await createCellTable(endpoint, 'control');
  tables.push(control);
  const store = new ControlPlaneStore(control.client, control.tableName);
  const deploy = new DeployTimeCalls(control.client, control.tableName);
  await deploy.seed(cellIds);
  const saga = { gate: Promise.resolve(), running: 0 };
  const cells: Record<string, { table: Table; app: ReturnType<typeof createApp>; registration: CellRegistration }> = {};
  const observability = createObservability('moving-test');
  const clients: Array<ReturnType<typeof localClient>> = [];

  async function addCell(cellId: string) {
    const table = await createCellTable(endpoint, cellId);
    tables.push(table);
    // Each cell its own client: the write deadline guards the client's middleware.
    const client = localClient(endpoint);
    clients.push(client);
    const writeDeadlines = new WriteDeadlines();
    writeDeadlines.guard(client);
    const changeJournal = new ChangeJournal(table.tableName);
    changeJournal.guard(client);
    const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    const starter = {
      start: async (orderId: string, input: object) => {
        const tenantId = /TENANT#([^"]+)/.exec(JSON.stringify(input))![1]!;
        saga.running += 1;
        void (async () => {
          try {
            await saga.gate;
            await sleep(10);
            // As Step Functions does: with its own access, not the cell API's client (nor its write deadline).
            await table.doc.send(
              new UpdateCommand({
                TableName: table.tableName,
                Key: orderKey(tenantId, orderId),
                UpdateExpression: 'SET #status = :confirmed, updatedAt = :now',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':confirmed': 'CONFIRMED', ':now': new Date().toISOString() },
              }),
            );
          } finally {
            saga.running -= 1;
          }
        })();
      },
    };
    const app = createApp(
      {
        entities: cellEntities(doc, table.tableName),
        orders: new OrderStore(doc, table.tableName, starter),
        ownership: new OwnershipCache(doc, table.tableName, cellId),
        directory: new TenantDirectory(doc, table.tableName),
        writeDeadlines,
        changeJournal,
      },
      observability,
    );
    const registration = {
      cellId,
      weight: 1,
      apiFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${cellId}-api`,
      tableName: table.tableName,
    };
    await deploy.register(registration);
    cells[cellId] = { table, app, registration };
  }
  for (const cellId of cellIds) await addCell(cellId);

  /** A router with its own copy of the map: `stale` keeps it from re-reading until asked. */
  class Router {
    map: MapVersion | undefined;
    async refresh() {
      this.map = (await store.latestVersion())!;
    }
    async request(method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
      const startedAt = Date.now();
      if (!this.map) await this.refresh();
      const tenantId = path.split('/')[2]!;
      let answer = await this.send(routeTenant(this.map!.map, this.map!.overrides, tenantId).cellId, method, path, options);
      if (answer.status === MISDIRECTED) {
        // As the router does: the map version the refusing cell holds comes right after its record; wait for it, a little.
        const epoch = Number(answer.headers['x-cell-epoch']);
        const giveUpAt = Date.now() + MAP_CATCH_UP_MS;
        await this.refresh();
        while (this.map!.version < epoch && Date.now() < giveUpAt) {
          await sleep(50);
          await this.refresh();
        }
        answer = await this.send(routeTenant(this.map!.map, this.map!.overrides, tenantId).cellId, method, path, options);
      }
      return { ...answer, startedAt, endedAt: Date.now() };
    }
    private async send(cellId: string, method: string, path: string, options: { body?: unknown; headers?: Record<string, string> }) {
      const result = (await cells[cellId]!.app.resolve(albEvent(method, path, options), lambdaContext)) as ALBResult;
      return {
        status: result.statusCode,
        body: result.body ? JSON.parse(result.body) : undefined,
        headers: Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
        cellId,
      };
    }
  }

  const moves = new MoveStore(control.doc, control.tableName);
  const cellData = new CellData(control.doc);
  const engine = (deps: Partial<MoveEngineDeps> = {}) => new MoveEngine({ store, moves, cellData, ...deps });

  /**
   * Steps a move to its end (or `until` it is in that state) as the workflow does, waiting where it says. A
   * move that never ends fails the test at once rather than hanging it (and
   * a mutation run with it).
   */
  async function run(moveId: string, using = engine(), until?: MoveRecord['state']): Promise<MoveRecord> {
    for (let steps = 0; steps < MAX_STEPS; steps += 1) {
      const outcome = await using.step(moveId);
      if (outcome.next === 'done') return (await moves.get(moveId))!;
      if (until !== undefined) {
        const now = (await moves.get(moveId))!;
        if (now.state === until) return now;
      }
      if (outcome.next === 'wait') await sleep(outcome.seconds * 1_000);
    }
    throw new Error(`move ${moveId} did not end in ${MAX_STEPS} steps: it is ${(await moves.get(moveId))?.state}`);
  }

  /** Steps a move until its record is in `state`, at most MAX_STEPS times, without waiting where it says. */
  async function stepUntil(moveId: string, state: MoveRecord['state'], using = engine()): Promise<void> {
    for (let steps = 0; steps < MAX_STEPS; steps += 1) {
      if ((await moves.get(moveId))!.state === state) return;
      await using.step(moveId);
    }
    throw new Error(`move ${moveId} did not reach ${state} in ${MAX_STEPS} steps: it is ${(await moves.get(moveId))?.state}`);
  }

  return {
    store,
    moves,
    cellData,
    cells,
    saga,
    router: () => new Router(),
    engine,
    run,
    stepUntil,
    addCell,
    cell: (cellId: string): CellRecord => ({ ...cells[cellId]!.registration, status: 'active' }),
    drop: async () => {
      for (const client of clients) client.destroy();
      await Promise.all(tables.map((t) => t.drop()));
    },
  };
}

export type CellWorld = Awaited<ReturnType<typeof cellWorld>>;
