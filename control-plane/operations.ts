import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { FENCE_WAIT_MS, type CellOwnershipRecord } from '../layers/shared/src/contracts/cell-table.ts';
import type { CellData } from './cell-data.ts';
import { encodeBuckets } from '../routing/bucket-codec.ts';
import { ControlPlaneError, NotFoundError, OperationError } from './errors.ts';
import { planRebalance, summarizeMoves, type RebalancePlan } from './plan.ts';
import type { CellRecord, CellStatus, MapVersion, MapVersionSummary } from '../routing/records.ts';
import { bucketCounts, routeTenant, type Overrides, type Route } from '../routing/routing.ts';
import { MapConflictError, UnknownCellError, type ControlPlaneStore } from './store.ts';

/** Directory Queries `tenants` runs at once. */
const TENANT_QUERIES_AT_ONCE = 16;

/** What one map version changed from the one before it (`first`: version 1, or its predecessor is gone). */
export interface VersionDiff {
  readonly version: number;
  readonly change: string;
  readonly by: string;
  readonly createdAt?: string;
  readonly first: boolean;
  readonly buckets: ReturnType<typeof summarizeMoves>;
  readonly pins: Array<{ tenantId: string; from?: string; to?: string }>;
}

export interface CellSummary extends CellRecord {
  readonly buckets: number;
  readonly pinnedTenants: number;
}

/** What the cell operations do in the cells' own tables (CellData's ownership and directory reads and writes). */
export type CellOwnershipAccess = Pick<CellData, 'hasData' | 'writeOwnership' | 'tenantsIn'>;

/** What the cell operations work with. */
export interface CellOperationsDeps {
  readonly store: ControlPlaneStore;
  readonly cellData: CellOwnershipAccess;
  /**
   * How long a pin waits between fencing the cells and checking for data:
   * past every cell API instance's ownership lease and the requests it let
   * through.
   * @default FENCE_WAIT_MS (12 s)
   */
  readonly fenceWaitMs?: number;
  /**
   * How the pin waits out `fenceWaitMs`: tests pass their own, to see the wait
   * without spending it.
   * @default node's `setTimeout` from `node:timers/promises`
   */
  readonly sleep?: (ms: number) => Promise<unknown>;
  /** Who makes the changes, recorded in each map version. */
  readonly by: string;
  readonly now?: () => Date;
}

/**
 * What the `cells` command does, as plain functions over the store: the CLI
 * parses arguments and prints, nothing more.
 */
export class CellOperations {
  private readonly now: () => Date;

  constructor(private readonly deps: CellOperationsDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async list(): Promise<{ version: number; cells: CellSummary[]; unregistered: Array<{ cellId: string; buckets: number }> }> {
    const { cells, version } = await this.deps.store.readRouting();
    const current = requireVersion(version);
    const counts = bucketCounts(current.map);
    const pins = new Map<string, number>();
    for (const cellId of Object.values(current.overrides)) pins.set(cellId, (pins.get(cellId) ?? 0) + 1);
    const registered = new Set(cells.map((cell) => cell.cellId));
    return {
      version: current.version,
      cells: [...cells]
        .sort((a, b) => a.cellId.localeCompare(b.cellId))
        .map((cell) => ({ ...cell, buckets: counts.get(cell.cellId) ?? 0, pinnedTenants: pins.get(cell.cellId) ?? 0 })),
      // Cells the map still names after their stack was deleted: their tenants get 503.
      unregistered: [...counts].filter(([cellId]) => !registered.has(cellId)).map(([cellId, buckets]) => ({ cellId, buckets })),
    };
  }

  async route(tenantId: string): Promise<Route & { version: number; status: CellStatus | 'unregistered' }> {
    const { cells, version } = await this.deps.store.readRouting();
    const current = requireVersion(version);
    const route = routeTenant(current.map, current.overrides, tenantId);
    const cell = cells.find((c) => c.cellId === route.cellId);
    return { ...route, version: current.version, status: cell?.status ?? 'unregistered' };
  }

  /** Pins a tenant to a cell: refused when the tenant has data in any other cell. */
  async pin(tenantId: string, cellId: string): Promise<{ version: MapVersion | undefined; route: Route }> {
    const { cells, version } = await this.deps.store.readRouting();
    const current = requireVersion(version);
    const target = cells.find((cell) => cell.cellId === cellId);
    if (!target) throw new UnknownCellError(cellId);
    if (target.status !== 'active') throw new OperationError(`${cellId} is ${target.status}: only an active cell takes a tenant`);
    const before = routeTenant(current.map, current.overrides, tenantId);
    if (before.reason === 'override' && before.cellId === cellId) {
      return { version: undefined, route: before };
    }
    const written = await this.fenced(current, cells, { ...current.overrides, [tenantId]: cellId }, tenantId, cellId, `pin ${tenantId} to ${cellId}`);
    return { version: written, route: routeTenant(written.map, written.overrides, tenantId) };
  }

  /** Unpins a tenant, back to its bucket's cell: refused when it has data in any other cell. */
  async unpin(tenantId: string): Promise<{ version: MapVersion; route: Route }> {
    const { cells, version } = await this.deps.store.readRouting();
    const current = requireVersion(version);
    if (!Object.hasOwn(current.overrides, tenantId)) throw new OperationError(`${tenantId} is not pinned`);
    const { [tenantId]: _removed, ...overrides } = current.overrides;
    const after = routeTenant(current.map, overrides, tenantId);
    const written = await this.fenced(
      current,
      cells,
      overrides,
      tenantId,
      after.cellId,
      `unpin ${tenantId} (back to ${after.cellId} by bucket ${after.bucket})`,
    );
    return { version: written, route: after };
  }

  async setStatus(cellId: string, status: CellStatus): Promise<CellRecord> {
    return this.deps.store.setStatus(cellId, status);
  }

  /** The tenants a cell's directory records in the given buckets, by bucket. */
  async tenants(cellId: string, buckets: readonly number[]): Promise<Array<{ bucket: number; tenants: string[] }>> {
    const { cells } = await this.deps.store.readRouting();
    const cell = cells.find((c) => c.cellId === cellId);
    if (!cell) throw new UnknownCellError(cellId);
    // A range may name thousands of buckets: a few Queries at a time, not all at once.
    const found: Array<{ bucket: number; tenants: string[] }> = [];
    for (let start = 0; start < buckets.length; start += TENANT_QUERIES_AT_ONCE) {
      const batch = buckets.slice(start, start + TENANT_QUERIES_AT_ONCE);
      found.push(
        ...(await Promise.all(batch.map(async (bucket) => ({ bucket, tenants: (await this.deps.cellData.tenantsIn(cell, bucket)).sort() })))),
      );
    }
    return found;
  }

  async plan(): Promise<RebalancePlan> {
    const { cells, version } = await this.deps.store.readRouting();
    const current = requireVersion(version);
    return planRebalance(current.map, cells, current.version);
  }

  async history(limit?: number): Promise<MapVersionSummary[]> {
    return this.deps.store.listVersions(limit);
  }

  /** What a map version changed from the one before: buckets by source and target cell (as ranges), and pins set or lifted. */
  async versionDiff(version: number): Promise<VersionDiff> {
    const [after, before] = await Promise.all([
      this.deps.store.readVersion(version),
      version > 1 ? this.deps.store.readVersion(version - 1) : undefined,
    ]);
    if (!after) throw new NotFoundError(`no map version ${version}`);
    const moved = after.map.flatMap((cellId, bucket) =>
      before && before.map[bucket] !== cellId ? [{ bucket, from: before.map[bucket]!, to: cellId }] : [],
    );
    const pins: VersionDiff['pins'] = [];
    const tenants = new Set([...Object.keys(before?.overrides ?? {}), ...Object.keys(after.overrides)]);
    for (const tenantId of [...tenants].sort()) {
      const [was, is] = [before?.overrides[tenantId], after.overrides[tenantId]];
      if (was !== is) pins.push({ tenantId, ...(was !== undefined && { from: was }), ...(is !== undefined && { to: is }) });
    }
    return {
      version,
      change: after.change,
      by: after.by,
      ...(after.createdAt && { createdAt: after.createdAt }),
      first: !before,
      buckets: summarizeMoves(moved),
      pins,
    };
  }

  /**
   * A change of a tenant's cell, made safe against requests in flight: every
   * cell first takes the next version as its ownership record (so no cell
   * serves the tenant by the version before), the change waits out the
   * cells' ownership lease, the data check runs (nothing can land in the
   * old cell any more), and only then the map changes. Refused or failed
   * before the map changed, the cells get the current version back.
   */
  private async fenced(
    current: MapVersion,
    cells: readonly CellRecord[],
    overrides: Overrides,
    tenantId: string,
    cellId: string,
    change: string,
  ): Promise<MapVersion> {
    // The bucket map is the same in both versions: encoded once.
    const encoded = encodeBuckets(current.map);
    const next: CellOwnershipRecord = {
      epoch: current.version + 1,
      ...encoded,
      overrides,
      writtenBy: randomUUID(),
      writtenAt: this.now().getTime(),
    };
    // Refused at once when the data is already elsewhere; checked again once the cells are fenced.
    await this.refuseIfDataElsewhere(cells, tenantId, cellId);
    const fenced: CellRecord[] = [];
    try {
      // In one order everywhere: of two changes made at once, the first cell's record decides which goes on.
      for (const cell of [...cells].sort((a, b) => a.cellId.localeCompare(b.cellId))) {
        if (!(await this.deps.cellData.writeOwnership(cell, next))) throw new MapConflictError(current.version);
        fenced.push(cell);
      }
      await (this.deps.sleep ?? sleep)(this.deps.fenceWaitMs ?? FENCE_WAIT_MS);
      await this.refuseIfDataElsewhere(cells, tenantId, cellId);
      return await this.writeOverrides(current, cells, overrides, change);
    } catch (error) {
      const before: CellOwnershipRecord = { epoch: current.version, ...encoded, overrides: current.overrides };
      await Promise.all(fenced.map((cell) => this.deps.cellData.writeOwnership(cell, before, next.writtenBy).catch(() => false)));
      if (error instanceof ControlPlaneError) throw error;
      throw new OperationError(`could not fence the cells for ${change} (${(error as Error).message}); nothing was changed`);
    }
  }

  /** The version after `current`: the same bucket map with new overrides, signed and dated. */
  private writeOverrides(current: MapVersion, cells: readonly CellRecord[], overrides: Overrides, change: string): Promise<MapVersion> {
    return this.deps.store.writeVersion(
      current.version,
      { map: current.map, overrides, change, by: this.deps.by, createdAt: this.now().toISOString() },
      cells,
    );
  }

  /**
   * Moving a tenant's routing without its data would hide that data (and
   * split the tenant across cells): the tenant may only be sent to `cellId`
   * if no other cell holds anything of it.
   */
  private async refuseIfDataElsewhere(cells: readonly CellRecord[], tenantId: string, cellId: string): Promise<void> {
    const others = cells.filter((cell) => cell.cellId !== cellId);
    const found = await Promise.all(
      others.map(async (cell) => {
        try {
          return (await this.deps.cellData.hasData(cell, tenantId)) ? cell.cellId : undefined;
        } catch (error) {
          throw new OperationError(`cannot tell whether ${tenantId} has data in ${cell.cellId} (${(error as Error).message}); nothing was changed`);
        }
      }),
    );
    const holding = found.filter((id): id is string => id !== undefined);
    if (holding.length) {
      throw new OperationError(
        `${tenantId} already has data in ${holding.join(', ')}: routing it to ${cellId} would hide that data. ` +
          `Move it with its data instead: npm run cells -- move tenant ${tenantId} ${cellId}`,
      );
    }
  }
}

function requireVersion(version: MapVersion | undefined): MapVersion {
  if (!version) {
    throw new OperationError('the control plane has no bucket map yet: deploy the control-plane stack (or start npm start) first');
  }
  return version;
}
