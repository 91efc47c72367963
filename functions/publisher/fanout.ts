import pMap from 'p-map';
import type { ConnectionStore } from '../live/connection-store.ts';

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
 * One batch's view of the subscriptions: each topic is read once per batch,
 * not once per record (a batch's records mostly share their tenant's topic,
 * so this halves the reads of a busy tenant's changes). A connection found
 * gone is closed once and left out of every later record of the batch.
 * Subscribing takes effect from the next batch at the latest, as it would
 * from an eventually consistent index read anyway.
 */
export class BatchSubscriptions implements Subscriptions {
  private readonly topics = new Map<string, Promise<string[]>>();
  private readonly gone = new Set<string>();

  constructor(private readonly store: Subscriptions) {}

  async subscribers(topics: readonly string[]): Promise<string[]> {
    const lists = await Promise.all(topics.map((topic) => this.topic(topic)));
    return [...new Set(lists.flat())].filter((connectionId) => !this.gone.has(connectionId));
  }

  async close(connectionId: string): Promise<void> {
    if (this.gone.has(connectionId)) return;
    this.gone.add(connectionId);
    await this.store.close(connectionId);
  }

  private topic(topic: string): Promise<string[]> {
    let found = this.topics.get(topic);
    if (!found) {
      found = this.store.subscribers([topic]);
      // A failed read is not kept: the next record asks again.
      found.catch(() => this.topics.delete(topic));
      this.topics.set(topic, found);
    }
    return found;
  }
}

/** Posts at most this many frames at once: enough for a thousand subscribers in a few round trips. */
const CONCURRENCY = 64;

/**
 * Sends a message to every subscriber of the topics. One connection's
 * failure never stops the others; gone connections are removed. Only the
 * subscriber lookup can fail the whole publish (and so the record, which
 * is then retried).
 */
export async function fanOut(
  store: Subscriptions,
  poster: Poster,
  message: unknown,
  topics: readonly string[],
  onFailure: (connectionId: string, error: unknown) => void = () => undefined,
): Promise<FanoutResult> {
  const subscribers = await store.subscribers(topics);
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
