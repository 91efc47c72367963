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

/** Where the router's instances write their heartbeats and count each other's. */
export interface FleetStore {
  beat(instanceId: string, expiresAtMs: number): Promise<void>;
  /** Instances whose heartbeat is still alive at `nowMs`. */
  count(nowMs: number): Promise<number>;
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
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * How many router instances run now, as each sees it: every `beatMs` an
 * instance writes its heartbeat and counts the live ones, in the
 * background of a request, as the routing cache refreshes. Each then
 * enforces `1 / size` of every tenant's quota (quotas.ts). A failed beat
 * or count keeps the last size: quotas go on being enforced as before.
 */
export class RouterFleet {
  private size = 1;
  private nextBeatAt = Number.NEGATIVE_INFINITY;
  private beating: Promise<void> | undefined;
  private readonly now: () => number;
  readonly instanceId: string;

  constructor(private readonly options: RouterFleetOptions) {
    this.now = options.now ?? Date.now;
    this.instanceId = options.instanceId ?? randomUUID();
  }

  /** This instance's share of every quota; starts a heartbeat when one is due. */
  share(): number {
    if (this.now() >= this.nextBeatAt) void this.beat();
    return 1 / this.size;
  }

  /** The instances counted at the last beat, this one included. */
  instances(): number {
    return this.size;
  }

  /** Writes this instance's heartbeat and counts the fleet; one at a time, joined when in flight. */
  beat(): Promise<void> {
    this.beating ??= (async () => {
      try {
        const now = this.now();
        await this.options.store.beat(this.instanceId, now + (this.options.lifeMs ?? HEARTBEAT_LIFE_MS));
        this.size = Math.max(1, await this.options.store.count(now));
      } catch (error) {
        this.options.onError?.(error);
      } finally {
        this.nextBeatAt = this.now() + (this.options.beatMs ?? HEARTBEAT_MS);
        this.beating = undefined;
      }
    })();
    return this.beating;
  }
}

/**
 * The fleet table through signed DynamoDB calls (the router has no SDK
 * clients): one PutItem and one Query with `Select: COUNT` per beat. The
 * item's `expiresAt` is in seconds, as DynamoDB's TTL wants it.
 */
export class FleetTable implements FleetStore {
  constructor(
    private readonly dynamodb: AwsApi,
    readonly tableName: string,
  ) {}

  async beat(instanceId: string, expiresAtMs: number): Promise<void> {
    await this.call('PutItem', {
      TableName: this.tableName,
      Item: { pk: { S: FLEET_PK }, sk: { S: instanceId }, expiresAt: { N: String(Math.ceil(expiresAtMs / 1000)) } },
    });
  }

  async count(nowMs: number): Promise<number> {
    let total = 0;
    let startKey: unknown;
    do {
      const page = (await this.call('Query', {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        FilterExpression: 'expiresAt > :now',
        ExpressionAttributeValues: { ':pk': { S: FLEET_PK }, ':now': { N: String(Math.floor(nowMs / 1000)) } },
        Select: 'COUNT',
        ...(startKey !== undefined && { ExclusiveStartKey: startKey }),
      })) as { Count?: number; LastEvaluatedKey?: unknown };
      total += page.Count ?? 0;
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return total;
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
