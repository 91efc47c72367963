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

/** Posts at most this many frames at once: enough for a thousand subscribers in a few round trips. */
const CONCURRENCY = 64;

/**
 * Sends a message to every subscriber of the topics. One connection's
 * failure never stops the others; gone connections are removed. Only the
 * subscriber lookup can fail the whole publish (and so the record, which
 * is then retried).
 */
export async function fanOut(
  store: ConnectionStore,
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
