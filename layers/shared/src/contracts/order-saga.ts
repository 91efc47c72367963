/**
 * The order saga's contract: what the cell API starts it with, the statuses
 * and failure reasons it writes on the order, and the error names its Retry
 * and Catch match. Shared by the state machine's definition
 * (lib/order-workflow.ts), the cell API (functions/cell-api) and the payment
 * function (functions/payment). A leaf module: no imports.
 */

export const ORDER_STATUSES = ['PENDING', 'RESERVED', 'PAID', 'CONFIRMED', 'FAILED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** Orders whose saga is still running: neither CONFIRMED nor FAILED. */
export const RUNNING_ORDER_STATUSES: readonly string[] = ORDER_STATUSES.filter((status) => status !== 'CONFIRMED' && status !== 'FAILED');

/** Why an order failed, as `failure.reason` says. */
export const FAILURE_REASONS = {
  outOfStock: 'out_of_stock',
  reservationConflict: 'reservation_conflict',
  reservationUnrecorded: 'reservation_unrecorded',
  paymentDeclined: 'payment_declined',
  paymentTimeout: 'payment_timeout',
  paymentFailed: 'payment_failed',
  paymentUnrecorded: 'payment_unrecorded',
} as const;
export type FailureReason = (typeof FAILURE_REASONS)[keyof typeof FAILURE_REASONS];

/** The error names the payment function throws and the Pay step's Retry and Catch match. */
export const PAYMENT_ERRORS = {
  /** The card was refused: never retried, the stock is released. */
  declined: 'PaymentDeclined',
  /** The provider could not answer now: retried with backoff. */
  unavailable: 'PaymentUnavailable',
} as const;

/** Where the saga finds each part of its input (the execution input the cell API builds, functions/cell-api/saga-input.ts). */
export const SAGA_INPUT = {
  tenantId: '$.tenantId',
  orderId: '$.orderId',
  paymentToken: '$.payment.token',
  reservation: '$.reservation.TransactItems',
  release: '$.release',
  stockChecks: '$.stockChecks',
} as const;

/**
 * How the saga records a failure on the order, as data: `failureReason`
 * (one of FAILURE_REASONS), and `failureLines`, each line's stock check
 * when the reservation failed (a list of `{ itemId, short }`; empty for
 * other reasons).
 */
export const FAILURE_ATTRIBUTES = { reason: 'failureReason', lines: 'failureLines' } as const;

/** One line's stock check, as the saga records it in `failureLines`. */
export interface LineCheckResult {
  readonly itemId: string;
  readonly short: boolean;
}
