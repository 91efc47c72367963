/**
 * A cell's alarm thresholds and their defaults, apart from the construct so
 * that the app's config (and the tools that read it) need not load CloudWatch.
 * Why each default: docs/design-notes.md, "A cell's health".
 */
/** What makes a cell unhealthy; every field has a default, chosen as `docs/design-notes.md` says. */
export interface CellAlarmThresholds {
  /** Per cent of the cell API's invocations that failed (unhandled errors and timeouts), over 5 minutes. @default 1 */
  readonly apiErrorPercent?: number;
  /** Throttled invocations of the cell API in 5 minutes. @default 1 */
  readonly apiThrottles?: number;
  /** The cell API's p99 duration, ms, in each of 3 consecutive minutes. @default 3000 */
  readonly apiP99Ms?: number;
  /** Order executions that ended in Fail in 5 minutes (refused orders included). @default 10 */
  readonly orderFailures?: number;
  /** Order executions that timed out in 5 minutes. @default 1 */
  readonly orderTimeouts?: number;
  /** Age of the newest record the change publisher has read from the stream, ms. @default 60000 */
  readonly iteratorAgeMs?: number;
  /** Messages waiting in a dead-letter or failure queue. @default 1 */
  readonly failedMessages?: number;
  /** Answers of 500 and above the router gave for this cell in 5 minutes. @default 5 */
  readonly router5xx?: number;
}

export const DEFAULT_CELL_ALARM_THRESHOLDS: Required<CellAlarmThresholds> = {
  apiErrorPercent: 1,
  apiThrottles: 1,
  apiP99Ms: 3_000,
  orderFailures: 10,
  orderTimeouts: 1,
  iteratorAgeMs: 60_000,
  failedMessages: 1,
  router5xx: 5,
};
