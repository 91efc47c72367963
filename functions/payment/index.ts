import { createObservability, instrument } from '@item-master/shared';
import * as z from 'zod';
import { charge, type PaymentResult } from './provider.ts';

const observability = createObservability();

const requestSchema = z.object({
  tenantId: z.string().min(1),
  orderId: z.string().min(1),
  token: z.string().min(1),
  attempt: z.number().int().min(0),
});

/**
 * The order workflow's Pay step. Errors are thrown with the names the
 * workflow's Retry and Catch match: `PaymentUnavailable` is retried,
 * `PaymentDeclined` compensates.
 */
export const handler = instrument<unknown, PaymentResult>(observability, async (event) => {
  const request = requestSchema.parse(event);
  observability.logger.appendKeys({ tenantId: request.tenantId, orderId: request.orderId, attempt: request.attempt });
  const result = await charge(request);
  observability.logger.info('payment approved', { paymentId: result.paymentId });
  return result;
});
