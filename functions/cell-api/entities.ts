import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { entityApi, type EntityApi } from './app.ts';
import { ItemStore } from './item-store.ts';
import { itemInputSchema } from './schema.ts';

/**
 * The versioned entities the cell API serves, each with its two rows in the
 * route table (contracts/routes.ts). An entity added by the recipe in docs/forking.md
 * is one more line here.
 */
export function cellEntities(doc: DynamoDBDocumentClient, tableName: string): EntityApi[] {
  return [entityApi(new ItemStore(doc, tableName), itemInputSchema)];
}
