import { randomUUID } from 'node:crypto';
import type { AwsApi } from './aws-api.ts';

/** The partition every router instance's heartbeat is written in. */
export const FLEET_PK = 'ROUTERS';

/** How often an instance says it is alive, and counts the others. */
export const HEARTBEAT_MS = 10_000;
/**
 * How long a heartbeat counts: three beats, so one lost write does not drop
 * a live instance from the count (DynamoDB's TTL removes the item later; the
 * count's filter does not wait for it).
 */
export const HEARTBEAT_LIFE_MS = 3 * HEARTBEAT_MS;
/**
 * The soonest an instance beats again when it serves a tenant the fleet
 * has not heard of at more than its share: a new flood is held to its
 * quota within about this long, not within a whole beat.
 */
export const EARLY_BEAT_MS = 1_000;

/** The live heartbeats: how many instances, and how many of them serve each tenant they reported. */
export interface FleetCount {
  readonly instances: number;
  readonly servers: ReadonlyMap<string, number>;
}

/** Where the router's instances write their heartbeats and count each other's. */
export interface FleetStore {
  /** This instance is alive until `expiresAtMs`, and served these tenants since its last beat. */
  beat(instanceId: string, expiresAtMs: number, tenants: readonly string[]): Promise<void>;
  /** The instances whose heartbeat is still alive at `nowMs`, and the tenants they reported. */
  count(nowMs: number): Promise<FleetCount>;
}

export interface RouterFleetOptions {
  readonly store: FleetStore;
  /** @default a random UUID */
  readonly instanceId?: string;
  /** @default HEARTBEAT_MS */
  readonly beatMs?: number;
  /** @default HEARTBEAT_LIFE_MS */
  readonly lifeMs?: number;
  readonly onError?: (error: unknown) => void;
  /**
   * The tenants this instance served its share of since the last beat
   * (TenantQuotas.takeActivity), given the beat's length and the instances counted.
   * @default none reported
   */
  readonly activity?: (seconds: number, instances: number) => string[];
  /**
   * Whether this instance has admitted more of the tenant since its last
   * beat than its share of one second's quota (TenantQuotas.isBusy): an
   * unreported tenant that is, brings the next beat forward.
   * @default never
   */
  readonly busy?: (tenantId: string, instances: number) => boolean;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Which router instances serve which tenants, as each instance sees it:
 * every `beatMs` an instance writes its heartbeat, with the tenants it
 * served its share of, and reads the live ones, in the background of a
 * request, as the routing cache refreshes. For a tenant that `k` instances
 * serve, each enforces `1 / k` of its quota (quotas.ts): a client whose
 * requests all land on one instance gets its whole quota there, a flood
 * spread over many is held to it together. A failed beat or count keeps
 * the last one: quotas go on being enforced as before.
 */
export class RouterFleet {
  private size = 1;
  private servers: ReadonlyMap<string, number> = new Map();
  private reported = new Set<string>();
  private nextBeatAt = Number.NEGATIVE_INFINITY;
  private lastBeatAt: number | undefined;
  private beating: Promise<void> | undefined;
  private readonly now: () => number;
  readonly instanceId: string;

  constructor(private readonly options: RouterFleetOptions) {
    this.now = options.now ?? Date.now;
    this.instanceId = options.instanceId ?? randomUUID();
  }

  /** This instance's share of a tenant's quota; starts a heartbeat when one is due. */
  shareOf(tenantId: string): number {
    const now = this.now();
    const unheardOf = !this.servers.has(tenantId) && !this.reported.has(tenantId);
    const early = unheardOf && now - (this.lastBeatAt ?? Number.NEGATIVE_INFINITY) >= EARLY_BEAT_MS && this.options.busy?.(tenantId, this.size);
    if (now >= this.nextBeatAt || early) void this.beat(early === true);
    // The instances that reported the tenant, and this one, which serves it now, if it did not.
    const serving = (this.servers.get(tenantId) ?? 0) + (this.reported.has(tenantId) ? 0 : 1);
    return 1 / Math.max(1, serving);
  }

  /** The instances counted at the last beat, this one included. */
  instances(): number {
    return this.size;
  }

  /**
   * Writes this instance's heartbeat and counts the fleet; one at a time,
   * joined when in flight. After an early beat the next comes soon too: the
   * other servers of a new flood report it within the same second or two,
   * and this instance's count of them must see their reports.
   */
  beat(early = false): Promise<void> {
    this.beating ??= (async () => {
      try {
        const now = this.now();
        // The activity counts since the last beat, however long an idle instance went without one.
        const since = (now - (this.lastBeatAt ?? now - (this.options.beatMs ?? HEARTBEAT_MS))) / 1000;
        this.lastBeatAt = now;
        const tenants = this.options.activity?.(Math.max(since, 1), this.size) ?? [];
        await this.options.store.beat(this.instanceId, now + (this.options.lifeMs ?? HEARTBEAT_LIFE_MS), tenants);
        const { instances, servers } = await this.options.store.count(now);
        this.size = Math.max(1, instances);
        this.servers = servers;
        this.reported = new Set(tenants);
      } catch (error) {
        this.options.onError?.(error);
      } finally {
        this.nextBeatAt = this.now() + (early ? 2 * EARLY_BEAT_MS : (this.options.beatMs ?? HEARTBEAT_MS));
        this.beating = undefined;
      }
    })();
    return this.beating;
  }
}

/**
 * The fleet table through signed DynamoDB calls (the router has no SDK
 * clients): one PutItem and one Query of the live heartbeats (their
 * reported tenants only) per beat. The item's `expiresAt` is in seconds, as
 * DynamoDB's TTL wants it.
 */
export class FleetTable implements FleetStore {
  constructor(
    private readonly dynamodb: AwsApi,
    readonly tableName: string,
  ) {}

  async beat(instanceId: string, expiresAtMs: number, tenants: readonly string[]): Promise<void> {
    await this.call('PutItem', {
      TableName: this.tableName,
      Item: {
        pk: { S: FLEET_PK },
        sk: { S: instanceId },
        expiresAt: { N: String(Math.ceil(expiresAtMs / 1000)) },
        tenants: { L: tenants.map((tenantId) => ({ S: tenantId })) },
      },
    });
  }

  async count(nowMs: number): Promise<FleetCount> {
    let instances = 0;
    const servers = new Map<string, number>();
    let startKey: unknown;
    do {
      const page = (await this.call('Query', {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        FilterExpression: 'expiresAt > :now',
        ProjectionExpression: 'tenants',
        ExpressionAttributeValues: { ':pk': { S: FLEET_PK }, ':now': { N: String(Math.floor(nowMs / 1000)) } },
        ...(startKey !== undefined && { ExclusiveStartKey: startKey }),
      })) as { Items?: Array<{ tenants?: { L?: Array<{ S?: string }> } }>; LastEvaluatedKey?: unknown };
      for (const item of page.Items ?? []) {
        instances += 1;
        for (const { S: tenantId } of item.tenants?.L ?? []) if (tenantId) servers.set(tenantId, (servers.get(tenantId) ?? 0) + 1);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return { instances, servers };
  }

  private async call(operation: string, body: object): Promise<unknown> {
    const response = await this.dynamodb.post({
      path: '/',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${operation}` },
      body: JSON.stringify(body),
    });
    return JSON.parse(response.body) as unknown;
  }
}
