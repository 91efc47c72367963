import { ID_PATTERN, ID_RULE, ORDER_STATUSES, type OrderStatus } from '@item-master/shared';
import * as z from 'zod';

const currencies = new Set(Intl.supportedValuesOf('currency'));

export const idSchema = z.string().regex(ID_PATTERN, ID_RULE);

const priceSchema = z
  .object({
    amount: z.number().int('must be an integer in minor units').min(0).max(Number.MAX_SAFE_INTEGER),
    currency: z.string().refine((code) => currencies.has(code), 'must be an ISO 4217 currency code'),
  })
  .strict();

const title = z.string().trim().min(1).max(256);
const description = z.string().max(4096);
const stock = z.number().int('must be an integer').min(0).max(1_000_000_000);
/**
 * Names that JavaScript objects give a meaning of their own (`__proto__`,
 * `constructor`, `toString`, …): as map keys they are dropped or refused
 * somewhere between the JSON parser, validation and the DynamoDB marshaller,
 * so the API refuses them rather than lose or garble them.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

/** Refuses a map whose own keys (read before anything else touches them) include a reserved name. */
function withoutReservedKeys<T extends z.ZodType>(schema: T) {
  return z.preprocess((value, ctx) => {
    if (typeof value === 'object' && value !== null) {
      const reserved = Object.keys(value).filter((key) => RESERVED_KEYS.has(key));
      if (reserved.length > 0) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `${reserved.map((key) => JSON.stringify(key)).join(', ')} cannot be used as a key: names of JavaScript object properties are reserved`,
        });
      }
    }
    return value;
  }, schema);
}

const attributes = withoutReservedKeys(
  z.record(z.string().min(1).max(128), z.string().max(1024)).refine((value) => Object.keys(value).length <= 100, 'at most 100 attributes'),
);

/** The body of `PUT /tenants/{tenantId}/items/{itemId}`: the whole item. */
export const itemInputSchema = z
  .object({
    title,
    description: description.optional(),
    price: priceSchema,
    stock,
    attributes: attributes.default({}),
  })
  .strict();

/**
 * The body of a `PATCH` of an entity whose `PUT` body is `input`: any
 * non-empty subset of its fields. A field given replaces the stored one (a
 * map as a whole); `null` removes an optional field; defaults are not
 * applied, so a field left out stays as it is.
 */
export function patchSchemaOf<S extends z.ZodRawShape>(input: z.ZodObject<S>) {
  const shape = Object.fromEntries(
    Object.entries(input.shape).map(([name, field]) => {
      if (field instanceof z.ZodDefault) return [name, (field.removeDefault() as z.ZodType).optional()];
      if (field instanceof z.ZodOptional) return [name, (field.unwrap() as z.ZodType).nullable().optional()];
      return [name, (field as z.ZodType).optional()];
    }),
  );
  return z
    .object(shape)
    .strict()
    .refine((patch) => Object.keys(patch).length > 0, 'the patch must change at least one field');
}

/** The body of `PATCH /tenants/{tenantId}/items/{itemId}`: `description: null` removes the description. */
export const itemPatchSchema = patchSchemaOf(itemInputSchema);

export type ItemInput = z.infer<typeof itemInputSchema>;

export interface Item extends ItemInput {
  tenantId: string;
  itemId: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export const listQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().min(1).max(1024).optional(),
});

/** The body of `POST /tenants/{tenantId}/orders`. */
export const orderInputSchema = z
  .object({
    lines: z
      .array(z.object({ itemId: idSchema, quantity: z.number().int('must be an integer').min(1).max(1_000_000_000) }).strict())
      .min(1, 'an order has at least one line')
      .max(100, 'an order has at most 100 lines'),
    customerId: idSchema,
    payment: z.object({ token: z.string().min(1).max(256) }).strict(),
  })
  .strict();

/** `Idempotency-Key`: visible ASCII, as clients generate them (UUIDs, ULIDs, hashes). */
export const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 visible ASCII characters');

export type OrderInput = z.infer<typeof orderInputSchema>;

export { ORDER_STATUSES, type OrderStatus };

export interface Order {
  tenantId: string;
  orderId: string;
  customerId: string;
  /** One line per item (lines of the same item are merged). */
  lines: Array<{ itemId: string; quantity: number }>;
  status: OrderStatus;
  /** Why the order failed; for `out_of_stock`, the items that were short. */
  failure?: { reason: string; items?: string[] };
  /**
   * Items whose reserved stock could not be given back when the order failed,
   * because the item had been deleted (or deleted and created again) since.
   */
  stockNotReturned?: string[];
  createdAt: string;
  reservedAt?: string;
  paidAt?: string;
  confirmedAt?: string;
  failedAt?: string;
  updatedAt: string;
}
