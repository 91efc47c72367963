/**
 * What the console shows and does, over the same operations layer as the
 * `cells` CLI (CellOperations, tools/cells/actions.ts): the server only
 * turns these into HTTP.
 */
import { ID_RULE, isValidId } from '../../layers/shared/src/ids.ts';
import { PlanRunner, type ApplyProgress, type SavedPlan } from '../../control-plane/apply.ts';
import {
  abortMoveById,
  checkPlanCells,
  defaultPlanFile,
  makePlan,
  moveEngine,
  moveRunner,
  readPlan,
  revertMove,
  startMove,
} from '../cells/actions.ts';
import type { ControlPlaneConnection } from '../../control-plane/connect.ts';
import { FINISHED, type MoveRecord, type MoveRequest } from '../../control-plane/move-record.ts';
import { revertible } from '../cells/move-view.ts';
import { CellOperations } from '../../control-plane/operations.ts';
import { InvalidInputError, NotFoundError, OperationError } from '../../control-plane/errors.ts';
import { UnknownCellError } from '../../control-plane/store.ts';
import { shown } from '../../lib/cli-input.ts';
import { BUCKET_COUNT, bucketOf } from '../../routing/routing.ts';
import type { BucketView, CellHealth, ConsoleSnapshot, MoveView, TenantView, VersionDiffView } from './api.ts';
import type { HealthSource } from './health.ts';
import type { TenantQuota } from '../../layers/shared/src/contracts/quotas.ts';

export interface ConsoleModelDeps {
  readonly connection: ControlPlaneConnection;
  readonly health: HealthSource;
  readonly mode: 'local' | 'aws';
  readonly appName: string;
  /** Who makes the changes, recorded in map versions and moves. */
  readonly by: string;
  /** How long a moved tenant's source copy is kept after the flip. @default 300 */
  readonly graceSeconds?: number;
  /** Where plans are saved and read. @default the `cells` CLI's place, .<appName>/plan-v<version>.json */
  readonly planFile?: (version: number | undefined) => string;
  readonly now?: () => number;
  /** Config's default tenant quota (tenantRate, tenantBurst), shown beside the tenants' own. */
  readonly defaultQuota: TenantQuota;
}

/** The control plane could not be read and there is no earlier read to show. */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
}

/** An apply started from the console, running in its process. */
export interface ApplyState {
  readonly running: boolean;
  readonly progress?: ApplyProgress;
  readonly error?: string;
}

export class ConsoleModel {
  readonly operations: CellOperations;
  private readonly now: () => number;
  private lastGood?: ConsoleSnapshot;
  private failingSince?: number;
  private applyState: ApplyState = { running: false };

  constructor(private readonly deps: ConsoleModelDeps) {
    this.operations = new CellOperations({ store: deps.connection.store, cellData: deps.connection.cellData, by: deps.by });
    this.now = deps.now ?? Date.now;
  }

  /** Everything the page shows. When the control plane cannot be read, the last good read, marked with the failure. */
  async snapshot(): Promise<ConsoleSnapshot & { apply: ApplyState }> {
    try {
      const snapshot = await this.read();
      this.lastGood = snapshot;
      this.failingSince = undefined;
      return { ...snapshot, apply: this.applyState };
    } catch (error) {
      this.failingSince ??= this.now();
      const message = `the control plane cannot be read: ${(error as Error).message}`;
      if (!this.lastGood) throw new UnreachableError(message);
      return { ...this.lastGood, unreachable: { since: this.failingSince, error: message }, apply: this.applyState };
    }
  }

  private async read(): Promise<ConsoleSnapshot> {
    const c = this.deps.connection;
    const [{ version, cells, unregistered }, routing, history, moves] = await Promise.all([
      this.operations.list(),
      c.store.readRouting(),
      this.operations.history(20),
      c.moves.list(),
    ]);
    const map = routing.version!.map;
    const mapCells = [...new Set(map)].sort();
    const index = new Map(mapCells.map((cellId, i) => [cellId, i]));
    const cellIds = cells.map((cell) => cell.cellId);
    let health: Record<string, CellHealth> = {};
    let traffic: ConsoleSnapshot['traffic'] = { slotSeconds: 5, newestSlotAt: this.now(), cells: {} };
    try {
      ({ health, traffic } = await this.deps.health.read(cellIds));
    } catch (error) {
      const detail = `health unknown: ${(error as Error).message}`;
      health = Object.fromEntries(cellIds.map((cellId) => [cellId, { state: 'unknown', detail }]));
    }
    const unfinished = moves.filter((m) => !FINISHED.has(m.state));
    return {
      target: c.target,
      mode: this.deps.mode,
      readAt: this.now(),
      version,
      cells: cells.map((cell) => ({
        cellId: cell.cellId,
        status: cell.status,
        weight: cell.weight,
        tableName: cell.tableName,
        buckets: cell.buckets,
        pinnedTenants: cell.pinnedTenants,
        health: health[cell.cellId] ?? { state: 'unknown', detail: 'no health read' },
      })),
      unregistered,
      map: map.map((cellId) => index.get(cellId)!),
      mapCells,
      pinnedBuckets: [...new Set(Object.keys(routing.version!.overrides).map((tenantId) => bucketOf(tenantId)))].sort((a, b) => a - b),
      movingBuckets: [...new Set(unfinished.flatMap((m) => m.buckets))].sort((a, b) => a - b),
      history: history.map((v) => ({
        version: v.version,
        change: v.change,
        by: v.by,
        ...(v.createdAt && { createdAt: v.createdAt }),
        pinned: Object.keys(v.overrides).length,
      })),
      moves: moves.slice(0, 50).map((m) => this.moveView(m)),
      traffic,
      quotas: {
        default: { rate: this.deps.defaultQuota.rate, burst: this.deps.defaultQuota.burst },
        overrides: routing.quotas.map(({ tenantId, rate, burst, updatedAt, by }) => ({ tenantId, rate, burst, updatedAt, by })),
      },
    };
  }

  private moveView(m: MoveRecord): MoveView {
    const finished = FINISHED.has(m.state);
    const elapsedMs = Math.max(1, (finished ? m.updatedAt : this.now()) - m.createdAt);
    const cloned = m.state === 'clone' && m.tenants.length > 0 ? (m.checkpoint?.tenant ?? 0) / m.tenants.length : undefined;
    return {
      moveId: m.moveId,
      kind: m.kind,
      subject: m.subject,
      from: m.from,
      to: m.to,
      state: m.state,
      finished,
      tenants: m.tenants.length,
      copied: m.copied,
      ratePerSecond: (m.copied * 1000) / elapsedMs,
      ...(cloned !== undefined && cloned > 0 && { etaSeconds: Math.round(((elapsedMs / cloned) * (1 - cloned)) / 1000) }),
      ...(m.fencedMs !== undefined && { fencedMs: m.fencedMs }),
      ...(m.state === 'forget' && m.forgetAt !== undefined && { forgetAt: m.forgetAt }),
      revertible: revertible(m),
      ...(m.revertOf && { revertOf: m.revertOf }),
      ...(m.revertedBy && { revertedBy: m.revertedBy }),
      startedAt: m.createdAt,
      updatedAt: m.updatedAt,
      ...(m.error && { error: m.error }),
    };
  }

  /** Where a tenant is and why; refused for a malformed id, and for a tenant no cell's directory records. */
  async tenant(tenantId: string): Promise<TenantView> {
    if (!isValidId(tenantId)) throw new InvalidInputError(`tenant id ${shown(tenantId)} ${ID_RULE}`);
    const route = await this.operations.route(tenantId);
    const tenants = await this.tenantsIn(route.cellId, route.bucket);
    if (!tenants.includes(tenantId))
      throw new UnknownTenantError(
        `tenant ${tenantId} is unknown: ${route.cellId}, the cell its bucket ${route.bucket} maps to, records no data of it`,
      );
    return { tenantId, bucket: route.bucket, cellId: route.cellId, source: route.reason, version: route.version, status: route.status };
  }

  /** A bucket's cell and how many tenants its cell's directory records there. */
  async bucket(bucket: number): Promise<BucketView> {
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= BUCKET_COUNT)
      throw new NotFoundError(`no bucket ${bucket}: buckets are 0 to ${BUCKET_COUNT - 1}`);
    const { version } = await this.deps.connection.store.readRouting();
    const cellId = version!.map[bucket]!;
    return { bucket, cellId, tenants: (await this.tenantsIn(cellId, bucket)).length };
  }

  private async tenantsIn(cellId: string, bucket: number): Promise<string[]> {
    return (await this.operations.tenants(cellId, [bucket]))[0]?.tenants ?? [];
  }

  async versionDiff(version: number): Promise<VersionDiffView> {
    const diff = await this.operations.versionDiff(version);
    return { version: diff.version, change: diff.change, first: diff.first, buckets: diff.buckets, pins: diff.pins };
  }

  async setStatus(cellId: string, status: 'active' | 'draining'): Promise<{ cellId: string; status: string }> {
    const { cells } = await this.deps.connection.store.readRouting();
    if (!cells.some((cell) => cell.cellId === cellId)) throw new UnknownCellError(cellId);
    const record = await this.operations.setStatus(cellId, status);
    return { cellId: record.cellId, status: record.status };
  }

  /** Makes the current map's rebalance plan and saves it where `cells apply` finds it too. */
  async plan() {
    return makePlan(this.operations, (version) => this.planFile(version));
  }

  /** Starts applying the current map's saved plan in this process; its moves run in the control plane's workflow. */
  async apply(): Promise<{ buckets: number }> {
    if (this.applyState.running) throw new OperationError('an apply started here is running already');
    // Taken before the first await, so that a second request arriving meanwhile is refused.
    const before = this.applyState;
    this.applyState = { running: true };
    let plan: SavedPlan;
    try {
      const { version } = await this.deps.connection.store.readRouting();
      const file = this.planFile(version?.version);
      plan = readPlan(file);
      await checkPlanCells(this.deps.connection, plan, file);
    } catch (error) {
      this.applyState = before;
      throw error;
    }
    const c = this.deps.connection;
    const runner = new PlanRunner({
      store: c.store,
      engine: moveEngine(c),
      moves: c.moves,
      runner: moveRunner(c),
      concurrency: 2,
      graceSeconds: this.deps.graceSeconds ?? 300,
      by: this.deps.by,
      onProgress: (progress) => {
        this.applyState = { running: true, progress };
      },
    });
    runner.apply(plan).then(
      (progress) => {
        this.applyState = { running: false, progress };
      },
      (error: unknown) => {
        this.applyState = { running: false, error: (error as Error).message };
      },
    );
    return { buckets: plan.moves.reduce((n, m) => n + m.count, 0) };
  }

  async startMove(request: MoveRequest): Promise<MoveView> {
    const { record } = await startMove(this.deps.connection, request, { by: this.deps.by, graceSeconds: this.deps.graceSeconds ?? 300 });
    return this.moveView(record);
  }

  async revertMove(moveId: string): Promise<MoveView> {
    return this.moveView(await revertMove(this.deps.connection, moveId, { by: this.deps.by, graceSeconds: this.deps.graceSeconds ?? 300 }));
  }

  async abortMove(moveId: string): Promise<MoveView> {
    return this.moveView(await abortMoveById(this.deps.connection, moveId));
  }

  private planFile(version: number | undefined): string {
    return (this.deps.planFile ?? ((v) => defaultPlanFile(this.deps.appName, v)))(version);
  }
}

export class UnknownTenantError extends NotFoundError {}
