import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ALB_CORRELATION_ID_PATH, createObservability, instrument, MetricUnit, tenantIdOf, DATA_PLANE, sdkClientConfig } from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { createApp } from './app.ts';
import { ItemStore } from './item-store.ts';
import { OrderStore, StepFunctionsStarter } from './order-store.ts';

const observability = createObservability();
const tableName = process.env.TABLE_NAME;
const stateMachineArn = process.env.STATE_MACHINE_ARN;
if (!tableName) throw new Error('TABLE_NAME is not set');
if (!stateMachineArn) throw new Error('STATE_MACHINE_ARN is not set');
const dynamo = observability.tracer.captureAWSv3Client(new DynamoDBClient(sdkClientConfig(DATA_PLANE)));
const doc = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
const sfn = observability.tracer.captureAWSv3Client(new SFNClient(sdkClientConfig(DATA_PLANE)));
const app = createApp(
  { items: new ItemStore(doc, tableName), orders: new OrderStore(doc, tableName, new StepFunctionsStarter(sfn, stateMachineArn)) },
  observability,
);

export const handler = instrument<ALBEvent, ALBResult>(
  observability,
  async (event, context) => {
    const tenantId = tenantIdOf(event.path);
    if (tenantId) observability.logger.appendKeys({ tenantId });
    const result = (await app.resolve(event, context)) as ALBResult;
    const { metrics } = observability;
    metrics.addMetric('Requests', MetricUnit.Count, 1);
    metrics.addMetric('ClientErrors', MetricUnit.Count, result.statusCode >= 400 && result.statusCode < 500 ? 1 : 0);
    metrics.addMetric('ServerErrors', MetricUnit.Count, result.statusCode >= 500 ? 1 : 0);
    return result;
  },
  { correlationIdPath: ALB_CORRELATION_ID_PATH },
);
