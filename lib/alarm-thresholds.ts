/**
 * The alarms' thresholds and their defaults, a cell's and the front door's,
 * apart from the constructs so that the app's config (and the tools that
 * read it) need not load CloudWatch. Why each default: docs/design/operations.md,
 * "A cell's health".
 */
/** What makes a cell unhealthy; every field has a default, chosen as `docs/design/operations.md` says. */
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

/** What makes the front door unhealthy; every field has a default, chosen as `docs/design/operations.md` says. */
export interface ControlPlaneAlarmThresholds {
  /** Per cent of the router's invocations that failed, over 5 minutes. @default 1 */
  readonly routerErrorPercent?: number;
  /** The router's p99 duration (its cell's included), ms, in each of 3 consecutive minutes. @default 5000 */
  readonly routerP99Ms?: number;
  /** Failed reads of the routing data in 5 minutes. @default 3 */
  readonly routingRefreshFailures?: number;
  /** The ALB's own 5xx answers in 5 minutes. @default 10 */
  readonly alb5xx?: number;
  /** The ALB's target response time p99, seconds, in each of 3 consecutive minutes. @default 5 */
  readonly albP99Seconds?: number;
  /** Integration and execution errors of the live-updates API in 5 minutes. @default 5 */
  readonly liveErrors?: number;
}

export const DEFAULT_CONTROL_PLANE_ALARM_THRESHOLDS: Required<ControlPlaneAlarmThresholds> = {
  routerErrorPercent: 1,
  routerP99Ms: 5_000,
  routingRefreshFailures: 3,
  alb5xx: 10,
  albP99Seconds: 5,
  liveErrors: 5,
};

/** Every threshold the config's `alarmThresholds` may set. */
export type AlarmThresholds = CellAlarmThresholds & ControlPlaneAlarmThresholds;

export const DEFAULT_ALARM_THRESHOLDS: Required<AlarmThresholds> = { ...DEFAULT_CELL_ALARM_THRESHOLDS, ...DEFAULT_CONTROL_PLANE_ALARM_THRESHOLDS };
