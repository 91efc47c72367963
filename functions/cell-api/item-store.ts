import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ITEM } from '@item-master/shared';
import { itemInputSchema, type Item } from './schema.ts';
import { VersionedStore, type VersionedEntity } from './versioned-store.ts';

/** Items as the versioned store keeps them: their keys and the fields a put or delete owns. */
export const ITEM_ENTITY: VersionedEntity = { ...ITEM, fields: Object.keys(itemInputSchema.shape) };

/**
 * Items of one cell table: a versioned store (conditional writes, versions
 * that never repeat, an `incarnation` per creation, which the order saga
 * uses to give stock back only to the item it took it from).
 */
export class ItemStore extends VersionedStore<Item> {
  constructor(doc: DynamoDBDocumentClient, tableName: string, now?: () => Date) {
    super(doc, tableName, ITEM_ENTITY, now);
  }
}
