import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ALB_CORRELATION_ID_PATH, createObservability, instrument } from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { createApp } from './app.ts';
import { ItemStore } from './item-store.ts';

const observability = createObservability();
const tableName = process.env.TABLE_NAME;
if (!tableName) throw new Error('TABLE_NAME is not set');
const dynamo = observability.tracer.captureAWSv3Client(new DynamoDBClient({}));
const store = new ItemStore(DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }), tableName);
const app = createApp(store, observability);

export const handler = instrument<ALBEvent, ALBResult>(
  observability,
  async (event, context) => {
    const tenantId = /^\/tenants\/([^/]+)/.exec(event.path)?.[1];
    if (tenantId) observability.logger.appendKeys({ tenantId });
    return (await app.resolve(event, context)) as ALBResult;
  },
  { correlationIdPath: ALB_CORRELATION_ID_PATH },
);
