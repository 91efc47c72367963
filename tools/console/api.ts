/**
 * What the console's server answers and the page reads: one contract, types
 * only (the page is bundled for the browser and imports nothing else).
 */

export type HealthState = 'ok' | 'alarm' | 'unknown';

export interface CellHealth {
  readonly state: HealthState;
  /** What the state is based on, in words (an alarm's name and reason, or the rates). */
  readonly detail: string;
  /** Requests per second over the last minute, where known. */
  readonly requestsPerSecond?: number;
  /** 5xx answers per second over the last minute, where known. */
  readonly errorsPerSecond?: number;
}

export interface CellView {
  readonly cellId: string;
  readonly status: string;
  readonly weight: number;
  readonly tableName: string;
  readonly buckets: number;
  readonly pinnedTenants: number;
  readonly health: CellHealth;
}

export interface MoveView {
  readonly moveId: string;
  readonly kind: 'tenant' | 'bucket';
  readonly subject: string;
  readonly from: string;
  readonly to: string;
  readonly state: string;
  readonly finished: boolean;
  readonly tenants: number;
  readonly copied: number;
  /** Records copied per second since the move started. */
  readonly ratePerSecond: number;
  /** Seconds left in the clone, estimated from the tenants cloned so far; absent when unknown. */
  readonly etaSeconds?: number;
  /** How long the moving tenants' writes were refused (fence to flip). */
  readonly fencedMs?: number;
  /** A flipped move waiting to forget the source's copy: when it will (ms since the epoch). */
  readonly forgetAt?: number;
  /** Flipped and waiting to forget, unclaimed: a revert would take the tenants back. */
  readonly revertible: boolean;
  /** The move this one reverts. */
  readonly revertOf?: string;
  /** The move that reverts (or reverted) this one. */
  readonly revertedBy?: string;
  readonly startedAt: number;
  readonly updatedAt: number;
  readonly error?: string;
}

export interface VersionView {
  readonly version: number;
  readonly change: string;
  readonly by: string;
  readonly createdAt?: string;
  readonly pinned: number;
}

/** Requests per second per cell, in equal slots, oldest first. */
export interface TrafficView {
  readonly slotSeconds: number;
  readonly newestSlotAt: number;
  readonly cells: Record<string, number[]>;
}

export interface ConsoleSnapshot {
  /** Where the control plane is, in words. */
  readonly target: string;
  readonly mode: 'local' | 'aws';
  /** When this data was read (ms since the epoch). */
  readonly readAt: number;
  /** Set when the last read failed: the data is the last good one, `readAt` its age. */
  readonly unreachable?: { readonly since: number; readonly error: string };
  readonly version: number;
  readonly cells: CellView[];
  /** Cells the map still names though they are not registered. */
  readonly unregistered: Array<{ cellId: string; buckets: number }>;
  /** Index into `mapCells` for each of the 16,384 buckets. */
  readonly map: number[];
  readonly mapCells: string[];
  readonly pinnedBuckets: number[];
  readonly movingBuckets: number[];
  readonly history: VersionView[];
  readonly moves: MoveView[];
  readonly traffic: TrafficView;
  /** Every tenant's quota at the front door: the default, and the tenants with their own. */
  readonly quotas: QuotasView;
}

export interface QuotasView {
  readonly default: { readonly rate: number; readonly burst: number };
  readonly overrides: Array<{ tenantId: string; rate: number; burst: number; updatedAt: string; by: string }>;
}

export interface BucketView {
  readonly bucket: number;
  readonly cellId: string;
  readonly tenants: number;
}

export interface TenantView {
  readonly tenantId: string;
  readonly bucket: number;
  readonly cellId: string;
  /** Why there: `override` (pinned) or `map`. */
  readonly source: string;
  readonly version: number;
  readonly status: string;
}

export interface VersionDiffView {
  readonly version: number;
  readonly change: string;
  readonly first: boolean;
  readonly buckets: Array<{ from: string; to: string; count: number; ranges: Array<[number, number]> }>;
  readonly pins: Array<{ tenantId: string; from?: string; to?: string }>;
}

/** Every refusal and failure comes back as this, with a 4xx or 5xx status. */
export interface ErrorBody {
  readonly error: string;
}
