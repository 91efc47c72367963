import type { TenantQuota } from '@item-master/shared/contracts/quotas';
import { SHIPPED_ROUTING_VARIABLE, type ShippedRouting } from '@item-master/shared/contracts/shipped-routing';
import '@item-master/shared/validation';
import * as z from 'zod/mini';
import { decodeBuckets } from '../../routing/bucket-codec.ts';
import type { CellStatus } from '../../routing/records.ts';
import type { BucketMap, Overrides } from '../../routing/routing.ts';
import type { RoutingState } from '../../routing/reader.ts';

/** A cell as the router needs it. */
export interface CellTarget {
  readonly cellId: string;
  readonly status: CellStatus;
  /** The cell API function's ARN (from the registry) or name (shipped with the deploy). */
  readonly functionName: string;
}

/** One consistent copy of the routing data: a map version, its overrides, and the registry. */
export interface RoutingSnapshot {
  readonly version: number;
  /** `store`: read from the control plane; `shipped`: the copy deployed with the router. */
  readonly source: 'store' | 'shipped';
  readonly map: BucketMap;
  readonly overrides: Overrides;
  readonly cells: ReadonlyMap<string, CellTarget>;
  /** Tenants' own quotas, in place of config's default; none in the shipped copy. */
  readonly quotas: ReadonlyMap<string, TenantQuota>;
}

export function snapshotFromState(state: RoutingState): RoutingSnapshot {
  if (!state.version) throw new Error('the control-plane table holds no map version yet');
  return {
    version: state.version.version,
    source: 'store',
    map: state.version.map,
    overrides: state.version.overrides,
    cells: new Map(state.cells.map((cell) => [cell.cellId, { cellId: cell.cellId, status: cell.status, functionName: cell.apiFunctionArn }])),
    quotas: new Map(state.quotas.map(({ tenantId, rate, burst }) => [tenantId, { rate, burst }])),
  };
}

/** The contract's shape, checked: a shipped routing the deploy did not write fails the cold start loudly. */
const shippedSchema = z.object({
  version: z.int().check(z.nonnegative()),
  functions: z.record(z.string(), z.string().check(z.minLength(1))),
  cells: z.array(z.string()),
  buckets: z.string(),
  overrides: z._default(z.record(z.string(), z.string()), {}),
}) satisfies z.ZodMiniType<ShippedRouting, unknown>;

/**
 * The routing the deploy ships in the router's environment, used only until
 * the store has been read once: a cold start while the store is unreachable
 * still routes.
 */
export function snapshotFromShipped(json: string | undefined): RoutingSnapshot {
  let raw: unknown;
  try {
    raw = JSON.parse(json ?? '');
  } catch {
    throw new Error(`${SHIPPED_ROUTING_VARIABLE} must be the JSON routing snapshot the deploy ships`);
  }
  const shipped = shippedSchema.parse(raw);
  return {
    version: shipped.version,
    source: 'shipped',
    map: decodeBuckets(shipped),
    overrides: shipped.overrides,
    cells: new Map(Object.entries(shipped.functions).map(([cellId, functionName]) => [cellId, { cellId, status: 'active', functionName }])),
    quotas: new Map(),
  };
}

export interface RoutingCacheOptions {
  /** Reads the registry and the newest map version from the control plane. */
  readonly load: () => Promise<RoutingState>;
  readonly shipped: RoutingSnapshot;
  /** How long a copy is used before the store is read again; also the wait after a failed read. */
  readonly refreshMs: number;
  /** Told of every failed read; the cache keeps serving its last good copy. */
  readonly onRefreshError?: (error: unknown, serving: RoutingSnapshot) => void;
  /** Told of every successful read, with the copy now in force. */
  readonly onRefresh?: (snapshot: RoutingSnapshot) => void;
  readonly now?: () => number;
}

/**
 * The router's copy of the routing data. It is read whole and used for
 * `refreshMs`; then the next request starts a read in the background and is
 * served from the copy in hand, as is every request until the read ends. Only
 * the first request of a cold start waits for a read, bounded by the client's
 * timeouts. A failed read changes nothing: the last good copy (or the
 * shipped one, if the store has never answered) keeps serving, and the store
 * is tried again `refreshMs` later, so an outage of the control plane, even
 * one that accepts connections and never answers, never stops or slows the
 * data plane.
 *
 * On Lambda a background read may span invocations (the environment is
 * frozen between them); a read that dies in the freeze fails like any other
 * and is tried again.
 */
export class RoutingCache {
  private snapshot: RoutingSnapshot;
  private nextReadAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;
  private freshReading: Promise<void> | undefined;
  private coldStart = true;
  private readonly now: () => number;

  constructor(private readonly options: RoutingCacheOptions) {
    this.snapshot = options.shipped;
    this.now = options.now ?? Date.now;
  }

  async current(): Promise<RoutingSnapshot> {
    if (this.now() >= this.nextReadAt) this.startRead();
    if (this.coldStart && this.reading) await this.reading;
    return this.snapshot;
  }

  /**
   * The routing as the control plane has it now, for a request a cell
   * refused as misdirected: a read that waits. A read already in flight may
   * have started before the change, so it is waited for and followed by one
   * more, which every caller waiting at the same time shares. If the read
   * fails, the routing held so far.
   */
  async fresh(): Promise<RoutingSnapshot> {
    this.freshReading ??= (async () => {
      await this.reading;
      await this.startRead();
    })().finally(() => {
      this.freshReading = undefined;
    });
    await this.freshReading;
    return this.snapshot;
  }

  /** One read at a time: a read in flight is joined, not doubled. */
  private startRead(): Promise<void> {
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  /** Resolves when no read is running (tests, and a host that wants the refresh done). */
  async settled(): Promise<void> {
    await this.reading;
  }

  private async read(): Promise<void> {
    try {
      this.snapshot = snapshotFromState(await this.options.load());
      this.options.onRefresh?.(this.snapshot);
    } catch (error) {
      this.options.onRefreshError?.(error, this.snapshot);
    } finally {
      this.coldStart = false;
      this.nextReadAt = this.now() + this.options.refreshMs;
    }
  }
}
