import pMap from 'p-map';
import { subscribersOf, type ConnectionStore, type Subscription } from '../live-socket/connection-store.ts';

/** Sends one frame to one connection; throws `GoneError` for a connection that no longer exists. */
export interface Poster {
  post(connectionId: string, data: string): Promise<void>;
}

export class GoneError extends Error {
  constructor(readonly connectionId: string) {
    super(`connection ${connectionId} is gone`);
    this.name = 'GoneError';
  }
}

export interface FanoutResult {
  sent: number;
  /** Connections that answered 410 Gone, and were removed. */
  gone: number;
  /** Posts that failed otherwise (logged, not retried: the next change brings fresh state). */
  failed: number;
}

/** What fan-out needs of the connection store. */
export type Subscriptions = Pick<ConnectionStore, 'subscribers' | 'close'>;

/**
 * One batch's view of the subscriptions: each tenant's are read once per
 * batch, not once per record (a batch's records are mostly one busy
 * tenant's changes, each to another item). A connection found gone is
 * closed once and left out of every later record of the batch.
 * Subscribing takes effect from the next batch at the latest, as it would
 * from an eventually consistent index read anyway.
 */
export class BatchSubscriptions implements Subscriptions {
  private readonly tenants = new Map<string, Promise<Subscription[]>>();
  private readonly gone = new Set<string>();

  constructor(private readonly store: Pick<ConnectionStore, 'subscriptions' | 'close'>) {}

  async subscribers(tenantId: string, topics: readonly string[]): Promise<string[]> {
    return subscribersOf(await this.tenant(tenantId), topics).filter((connectionId) => !this.gone.has(connectionId));
  }

  async close(connectionId: string): Promise<void> {
    if (this.gone.has(connectionId)) return;
    this.gone.add(connectionId);
    await this.store.close(connectionId);
  }

  private tenant(tenantId: string): Promise<Subscription[]> {
    let found = this.tenants.get(tenantId);
    if (!found) {
      found = this.store.subscriptions(tenantId);
      // A failed read is not kept: the next record asks again.
      found.catch(() => this.tenants.delete(tenantId));
      this.tenants.set(tenantId, found);
    }
    return found;
  }
}

/** Posts at most this many frames at once: enough for a thousand subscribers in a few round trips. */
const CONCURRENCY = 64;

/** Who a change goes to: the subscribers of any of these topics of the tenant. */
export interface Audience {
  readonly tenantId: string;
  readonly topics: readonly string[];
}

/**
 * Sends a message to every subscriber of the audience's topics. One connection's
 * failure never stops the others; gone connections are removed. Only the
 * subscriber lookup can fail the whole publish (and so the record, which
 * is then retried).
 */
export async function fanOut(
  store: Subscriptions,
  poster: Poster,
  message: unknown,
  audience: Audience,
  onFailure: (connectionId: string, error: unknown) => void = () => undefined,
): Promise<FanoutResult> {
  const subscribers = await store.subscribers(audience.tenantId, audience.topics);
  const data = JSON.stringify(message);
  const result: FanoutResult = { sent: 0, gone: 0, failed: 0 };
  await pMap(
    subscribers,
    async (connectionId) => {
      try {
        await poster.post(connectionId, data);
        result.sent += 1;
      } catch (error) {
        if (error instanceof GoneError) {
          result.gone += 1;
          await store.close(connectionId).catch((cleanup: unknown) => onFailure(connectionId, cleanup));
          return;
        }
        result.failed += 1;
        onFailure(connectionId, error);
      }
    },
    { concurrency: CONCURRENCY },
  );
  return result;
}
