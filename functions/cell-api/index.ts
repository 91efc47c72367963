import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  ALB_CORRELATION_ID_PATH,
  createObservability,
  instrument,
  MetricUnit,
  parseEnvironment,
  tenantIdOf,
  DATA_PLANE,
  sdkClientConfig,
} from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import * as z from 'zod';
import { createApp } from './app.ts';
import { cellEntities } from './entities.ts';
import { OrderStore, StepFunctionsStarter } from './order-store.ts';
import { OwnershipCache } from './ownership.ts';
import { TenantDirectory } from './directory.ts';
import { WriteDeadlines } from './write-deadline.ts';
import { ChangeJournal } from './change-journal.ts';

const observability = createObservability();
const {
  TABLE_NAME: tableName,
  STATE_MACHINE_ARN: stateMachineArn,
  CELL_ID: cellId,
} = parseEnvironment(
  'cell API',
  z.object({ TABLE_NAME: z.string().min(1), STATE_MACHINE_ARN: z.string().startsWith('arn:'), CELL_ID: z.string().min(1) }),
);
const dynamo = observability.tracer.captureAWSv3Client(new DynamoDBClient(sdkClientConfig(DATA_PLANE)));
const writeDeadlines = new WriteDeadlines();
writeDeadlines.guard(dynamo);
const changeJournal = new ChangeJournal(tableName);
changeJournal.guard(dynamo);
const doc = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
const sfn = observability.tracer.captureAWSv3Client(new SFNClient(sdkClientConfig(DATA_PLANE)));
const app = createApp(
  {
    entities: cellEntities(doc, tableName),
    orders: new OrderStore(doc, tableName, new StepFunctionsStarter(sfn, stateMachineArn)),
    ownership: new OwnershipCache(doc, tableName, cellId),
    directory: new TenantDirectory(doc, tableName),
    writeDeadlines,
    changeJournal,
  },
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
