/**
 * How long every AWS SDK client of the service waits, in one place. A leaf
 * module (no imports): the functions, the CLIs and the local runtime use it.
 *
 * `throwOnRequestTimeout` is what makes `requestTimeout` a timeout: without
 * it, `@smithy/node-http-handler` only logs a warning and the call waits for
 * as long as a server that accepted the connection keeps silent.
 */
export interface SdkTimeouts {
  /** Milliseconds to open the connection (TCP and TLS). */
  readonly connectMs: number;
  /** Milliseconds from the request sent to the whole response read. */
  readonly requestMs: number;
  /** Attempts in all, the first included; the SDK retries timeouts too. */
  readonly maxAttempts: number;
}

/** The request handler and retry settings an SDK client takes, for `new XClient({ ...sdkClientConfig(t) })`. */
export function sdkClientConfig(timeouts: SdkTimeouts) {
  return {
    maxAttempts: timeouts.maxAttempts,
    requestHandler: {
      connectionTimeout: timeouts.connectMs,
      requestTimeout: timeouts.requestMs,
      throwOnRequestTimeout: true,
    },
  };
}

/**
 * The router's read of the control plane: short, because the router serves
 * its last good copy meanwhile, and a cold start waits for it (at most
 * 2 × (0.5 + 1) s plus the SDK's backoff) before it serves the shipped map.
 */
export const CONTROL_PLANE_READ: SdkTimeouts = { connectMs: 500, requestMs: 1_000, maxAttempts: 2 };

/**
 * The router's Invoke of a cell: one attempt (a throttled cell is answered
 * 503 with `Retry-After`, the client retries), and the request ends before
 * the router's own 10 s timeout so that a hung cell is a 504 with a body,
 * not the ALB's 502.
 */
export const CELL_INVOKE: SdkTimeouts = { connectMs: 1_000, requestMs: 8_000, maxAttempts: 1 };

/**
 * A function's calls to its own table, queue or workflow (cell API,
 * publisher, live routes, token hook): DynamoDB answers in milliseconds,
 * so 2 s is a fault, and three attempts fit well inside every timeout.
 */
export const DATA_PLANE: SdkTimeouts = { connectMs: 1_000, requestMs: 2_000, maxAttempts: 3 };

/** The operator's commands: calls over the internet to a control plane, with room for slow links. */
export const OPERATOR: SdkTimeouts = { connectMs: 3_000, requestMs: 10_000, maxAttempts: 3 };
