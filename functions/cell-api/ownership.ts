import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { OWNERSHIP_KEY, OWNERSHIP_LEASE_MS, type CellOwnershipRecord } from '@item-master/shared';
import { decodeBuckets } from '../../control-plane/bucket-codec.ts';
import { routeTenant, type BucketMap } from '../../control-plane/routing.ts';

/** The cell's ownership record is there but cannot be read as a map: the cell serves no tenant until it is written again. */
export class OwnershipUnreadableError extends Error {
  constructor(readonly epoch: unknown, options: { cause: unknown }) {
    super(`the cell's ownership record (epoch ${String(epoch)}) cannot be read as a map`, options);
    this.name = 'OwnershipUnreadableError';
  }
}

/** Whether this cell serves a tenant, and by which map version it judged. */
export interface Ownership {
  readonly owned: boolean;
  /** The map version of the cell's record; absent when the cell has none and serves every tenant. */
  readonly epoch?: number;
  /** The cell the record gives the tenant to. */
  readonly owner?: string;
}

/**
 * The cell's ownership record, read from its own table and trusted for a
 * lease (OWNERSHIP_LEASE_MS): a request within the lease costs a hash and a
 * lookup, no read; the first request after it re-reads the record (one
 * consistent GetItem per instance per lease, under load almost none per
 * request). An instance frozen between invocations finds its lease expired
 * when it wakes, so it never serves by a record older than the lease.
 */
export class OwnershipCache {
  private current: { epoch: number; map: BucketMap; overrides: Readonly<Record<string, string>> } | undefined;
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
    if (now() - this.readAt >= (this.options.leaseMs ?? OWNERSHIP_LEASE_MS)) {
      // One read for every request that finds the lease expired at once.
      this.reading ??= this.read(now).finally(() => (this.reading = undefined));
      await this.reading;
    }
    if (!this.current) return { owned: true };
    const { cellId } = routeTenant(this.current.map, this.current.overrides, tenantId);
    return { owned: cellId === this.cellId, epoch: this.current.epoch, owner: cellId };
  }

  private async read(now: () => number): Promise<void> {
    const startedAt = now();
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: OWNERSHIP_KEY, ConsistentRead: true }));
    const record = Item as (CellOwnershipRecord & Record<string, unknown>) | undefined;
    if (!record) {
      this.current = undefined;
    } else if (record.epoch !== this.current?.epoch) {
      // Decoding a map is the costly part: only when the version changed.
      try {
        this.current = { epoch: record.epoch, map: decodeBuckets({ cells: [...record.cells], buckets: record.buckets }), overrides: record.overrides ?? {} };
      } catch (cause) {
        // Serving by a guess could serve another cell's tenant: refuse, and read again on the next request.
        throw new OwnershipUnreadableError(record.epoch, { cause });
      }
    }
    // The lease runs from before the read: the record may have changed while it was in flight.
    this.readAt = startedAt;
  }
}
