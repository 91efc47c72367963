import { ID_PATTERN, ID_RULE } from '@item-master/shared';
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
const attributes = z
  .record(z.string().min(1).max(128), z.string().max(1024))
  .refine((value) => Object.keys(value).length <= 100, 'at most 100 attributes');

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
 * The body of `PATCH`: any subset of the item's fields. A field given
 * replaces the stored one (`attributes` as a whole); `description: null`
 * removes the description.
 */
export const itemPatchSchema = z
  .object({
    title: title.optional(),
    description: description.nullable().optional(),
    price: priceSchema.optional(),
    stock: stock.optional(),
    attributes: attributes.optional(),
  })
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, 'the patch must change at least one field');

export type ItemInput = z.infer<typeof itemInputSchema>;
export type ItemPatch = z.infer<typeof itemPatchSchema>;

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
