import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { ApiGatewayManagementApiClient, GoneException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createObservability, instrument, MetricUnit, DATA_PLANE, parseEnvironment, requiredVariables, sdkClientConfig } from '@item-master/shared';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { ConnectionStore } from '../live-socket/connection-store.ts';
import { messageOf, oldestChangeAgeMs } from './changes.ts';
import { BatchSubscriptions, fanOut, GoneError, type Poster, type Subscriptions } from './fanout.ts';

const observability = createObservability();
const { logger, metrics, tracer } = observability;
const { CONNECTIONS_TABLE: tableName, CALLBACK_URL: callbackUrl } = parseEnvironment(
  'publisher',
  requiredVariables('CONNECTIONS_TABLE', 'CALLBACK_URL'),
);
const store = new ConnectionStore(DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient(sdkClientConfig(DATA_PLANE)))), tableName);
const management = tracer.captureAWSv3Client(new ApiGatewayManagementApiClient({ endpoint: callbackUrl, ...sdkClientConfig(DATA_PLANE) }));

const poster: Poster = {
  async post(connectionId, data) {
    try {
      await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
    } catch (error) {
      if (error instanceof GoneException) throw new GoneError(connectionId);
      throw error;
    }
  },
};

const processor = new BatchProcessor(EventType.DynamoDBStreams);

/** One change of the cell table to its subscribers. Throwing fails the record, which Lambda retries. */
async function publish(record: DynamoDBRecord, subscriptions: Subscriptions): Promise<void> {
  try {
    const change = messageOf(record);
    if (!change) return;
    const result = await fanOut(subscriptions, poster, change.message, change.audience, (connectionId, error) =>
      logger.warn('post failed', { connectionId, error }),
    );
    metrics.addMetric('MessagesSent', MetricUnit.Count, result.sent);
    metrics.addMetric('GoneConnections', MetricUnit.Count, result.gone);
    metrics.addMetric('FailedPosts', MetricUnit.Count, result.failed);
  } catch (error) {
    logger.error('record not published: it will be retried', { error, eventID: record.eventID });
    throw error;
  }
}

/**
 * The cell's change publisher, fed by its table's stream: each item and
 * order change is posted to the connections that follow it. Records are
 * published in stream order (one item's versions arrive in order); a
 * record whose subscribers cannot be read is reported as a batch item
 * failure, so that Lambda retries from it.
 */
export const handler = instrument<DynamoDBStreamEvent, DynamoDBBatchResponse>(observability, (event, context) => {
  const lag = oldestChangeAgeMs(event.Records);
  if (lag !== undefined) metrics.addMetric('StreamLag', MetricUnit.Milliseconds, lag);
  const subscriptions = new BatchSubscriptions(store);
  return processPartialResponse(event, (record: DynamoDBRecord) => publish(record, subscriptions), processor, {
    context,
    processInParallel: false,
  });
});
