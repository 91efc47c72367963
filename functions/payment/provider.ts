import { PAYMENT_ERRORS } from '@item-master/shared';

/**
 * A simulated payment provider that behaves by card token, so that every
 * path of the order workflow can be driven on purpose:
 *
 * | token          | behaviour                                                       |
 * | -------------- | --------------------------------------------------------------- |
 * | `tok_ok`       | approved                                                        |
 * | `tok_declined` | declined (`PaymentDeclined`: never retried)                     |
 * | `tok_flaky`    | `PaymentUnavailable` (transient) on attempts 0 and 1, then approved |
 * | `tok_slow`     | answers after `slowMs`, past the workflow's task timeout        |
 *
 * Any other token is declined.
 */
export interface PaymentRequest {
  readonly tenantId: string;
  readonly orderId: string;
  readonly token: string;
  /** How many times this payment was tried before: Step Functions' `$$.State.RetryCount`. */
  readonly attempt: number;
}

export interface PaymentResult {
  readonly paymentId: string;
  readonly status: 'approved';
}

/** The card was refused: retrying will not help. */
export class PaymentDeclined extends Error {
  override name = PAYMENT_ERRORS.declined;
}

/** The provider could not answer now: worth retrying. */
export class PaymentUnavailable extends Error {
  override name = PAYMENT_ERRORS.unavailable;
}

export const TRANSIENT_FAILURES = 2;

export async function charge(request: PaymentRequest, options: { slowMs?: number } = {}): Promise<PaymentResult> {
  const approved = { paymentId: `pay_${request.orderId}`, status: 'approved' } as const;
  switch (request.token) {
    case 'tok_ok':
      return approved;
    case 'tok_flaky':
      if (request.attempt < TRANSIENT_FAILURES) throw new PaymentUnavailable(`provider unavailable (attempt ${request.attempt + 1})`);
      return approved;
    case 'tok_slow':
      await new Promise((resolve) => setTimeout(resolve, options.slowMs ?? 60_000));
      return approved;
    default:
      throw new PaymentDeclined('the card was declined');
  }
}
