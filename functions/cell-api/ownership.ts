import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  CELL_RECORDS_PK,
  MOVE_SK_PREFIX,
  OWNERSHIP_KEY,
  OWNERSHIP_LEASE_MS,
  WRITE_WINDOW_MS,
  type CellMoveMarker,
  type CellOwnershipRecord,
} from '@item-master/shared';
import { decodeBuckets } from '../../routing/bucket-codec.ts';
import { bucketOf, routeTenant, type BucketMap } from '../../routing/routing.ts';

/** The cell's ownership record is there but cannot be read as a map: the cell serves no tenant until it is written again. */
export class OwnershipUnreadableError extends Error {
  constructor(
    readonly epoch: unknown,
    options: { cause: unknown },
  ) {
    super(`the cell's ownership record (epoch ${String(epoch)}) cannot be read as a map`, options);
    this.name = 'OwnershipUnreadableError';
  }
}

/** Whether this cell serves a tenant, and by which map version it judged. */
export interface Ownership {
  readonly owned: boolean;
  /** The map version of the cell's record; undefined when the cell has none and serves every tenant. */
  readonly epoch: number | undefined;
  /** The cell the record gives the tenant to (undefined without a record). */
  readonly owner: string | undefined;
  /** The tenant is moving away and its writes are fenced: reads are served, writes refused until the move flips. */
  readonly fenced: boolean;
  /** Until when (ms since the epoch) a write judged by this answer may be sent (WRITE_WINDOW_MS, or the tenant's fence). */
  readonly writeDeadline: number;
  /** The move this cell's writes of the tenant are journaled for: it serves the tenant, which is moving (or moved here and may go back). */
  readonly journal?: string;
}

/**
 * How often a write of a fenced tenant may read the record again before the
 * lease is out: a fenced source learns of the flip within this, not a whole
 * lease. (A moving tenant the cell refuses reads it at once: after a flip
 * the router already sends it here.)
 */
export const MOVING_REREAD_MS = 100;

interface Marker {
  readonly moveId: string;
  readonly role: CellMoveMarker['role'];
  readonly buckets: ReadonlySet<number>;
  readonly tenants: ReadonlySet<string>;
  readonly fenceAt?: number;
}

/**
 * The cell's ownership record and its move markers (one Query of the cell's
 * own partition), trusted for a lease (OWNERSHIP_LEASE_MS): a request within
 * the lease costs a hash and a lookup, no read; the first request after it
 * re-reads (one consistent Query per instance per lease, under load almost
 * none per request). An instance frozen between invocations finds its lease
 * expired when it wakes, so it never serves by a record older than the
 * lease. Only requests for a tenant that is moving read sooner: refused
 * here, at once; fenced here, after MOVING_REREAD_MS.
 */
export class OwnershipCache {
  private current: { epoch: number; map: BucketMap; overrides: Readonly<Record<string, string>> } | undefined;
  private markers: readonly Marker[] = [];
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    readonly cellId: string,
    private readonly options: { leaseMs?: number; now?: () => number } = {},
  ) {}

  async check(tenantId: string): Promise<Ownership> {
    const now = this.options.now ?? Date.now;
    if (now() - this.readAt >= (this.options.leaseMs ?? OWNERSHIP_LEASE_MS)) await this.refresh(now);
    const judged = this.judge(tenantId, now());
    if (judged.moving && !judged.owned) {
      // Refused, but coming here: the flip may have just happened. A read of its own, started after this request was.
      await this.read(now);
      return this.judge(tenantId, now());
    }
    if (judged.moving && judged.fenced && now() - this.readAt >= MOVING_REREAD_MS) {
      await this.refresh(now);
      return this.judge(tenantId, now());
    }
    return judged;
  }

  private judge(tenantId: string, at: number): Ownership & { moving: boolean } {
    const current = this.current;
    const route = current ? routeTenant(current.map, current.overrides, tenantId) : undefined;
    const owned = route === undefined || route.cellId === this.cellId;
    // The normal path: no move in this cell, nothing more to look up.
    const marker = this.markers.length === 0 ? undefined : this.markerOf(tenantId, route);
    const fenceAt = marker?.role === 'source' ? marker.fenceAt : undefined;
    return {
      owned,
      epoch: current?.epoch,
      owner: route?.cellId,
      moving: marker !== undefined,
      fenced: owned && fenceAt !== undefined && at >= fenceAt,
      writeDeadline: fenceAt === undefined ? this.readAt + WRITE_WINDOW_MS : Math.min(this.readAt + WRITE_WINDOW_MS, fenceAt),
      // A source journals until the flip, a target from the flip until forget (its writes are copied back to the source).
      ...(owned && marker !== undefined && { journal: marker.moveId }),
    };
  }

  /** The move a tenant is part of here: by name, or by its bucket when the map (not a pin) routes it. */
  private markerOf(tenantId: string, route: { bucket: number; reason: string } | undefined): Marker | undefined {
    const bucket = route?.bucket ?? bucketOf(tenantId);
    const byBucket = route === undefined || route.reason === 'map';
    return this.markers.find((m) => m.tenants.has(tenantId) || (byBucket && m.buckets.has(bucket)));
  }

  /** One read for every request that needs it at once. */
  private refresh(now: () => number): Promise<void> {
    this.reading ??= this.read(now).finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(now: () => number): Promise<void> {
    const startedAt = now();
    const { Items = [] } = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': CELL_RECORDS_PK },
        ConsistentRead: true,
      }),
    );
    // Reads may overlap (a refused moving tenant reads on its own): an older one never replaces a newer one.
    if (startedAt < this.readAt) return;
    const record = Items.find((item) => item.sk === OWNERSHIP_KEY.sk) as (CellOwnershipRecord & Record<string, unknown>) | undefined;
    if (!record) {
      this.current = undefined;
    } else if (record.epoch !== this.current?.epoch) {
      // Decoding a map is the costly part: only when the version changed.
      try {
        this.current = {
          epoch: record.epoch,
          map: decodeBuckets({ cells: [...record.cells], buckets: record.buckets }),
          overrides: record.overrides ?? {},
        };
      } catch (cause) {
        // Serving by a guess could serve another cell's tenant: refuse, and read again on the next request.
        throw new OwnershipUnreadableError(record.epoch, { cause });
      }
    }
    this.markers = Items.filter((item) => String(item.sk).startsWith(MOVE_SK_PREFIX)).map((item) => {
      const marker = item as CellMoveMarker;
      return {
        moveId: marker.moveId,
        role: marker.role,
        buckets: new Set(marker.buckets ?? []),
        tenants: new Set(marker.tenants ?? []),
        ...(typeof marker.fenceAt === 'number' && { fenceAt: marker.fenceAt }),
      };
    });
    // The lease runs from before the read: the record may have changed while it was in flight.
    this.readAt = startedAt;
  }
}
