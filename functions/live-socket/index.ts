import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createObservability, instrument, MetricUnit, DATA_PLANE, parseEnvironment, sdkClientConfig } from '@item-master/shared';
import * as z from 'zod';
import type {
  APIGatewayEventWebsocketRequestContextV2,
  APIGatewayProxyResultV2,
  APIGatewayProxyWebsocketEventV2WithRequestContext,
} from 'aws-lambda';
import type { ConnectionContext } from '../live-authorizer/authorizer.ts';
import { ConnectionStore } from './connection-store.ts';
import { handleFrame } from './socket.ts';

/** API Gateway passes the `$connect` authorizer's context with every event of the connection. */
type SocketEvent = APIGatewayProxyWebsocketEventV2WithRequestContext<
  APIGatewayEventWebsocketRequestContextV2 & { authorizer?: Partial<ConnectionContext> }
>;

const observability = createObservability();
const { CONNECTIONS_TABLE: tableName } = parseEnvironment('live socket', z.object({ CONNECTIONS_TABLE: z.string().min(1) }));
const dynamo = observability.tracer.captureAWSv3Client(new DynamoDBClient(sdkClientConfig(DATA_PLANE)));
const store = new ConnectionStore(DynamoDBDocumentClient.from(dynamo), tableName);

/**
 * Every route of the live-updates API: `$connect` records the connection
 * under its token's tenant, `$disconnect` removes it with its
 * subscriptions, and every frame (`subscribe`, `unsubscribe`, `$default`)
 * is answered on the connection through the route's response.
 */
export const handler = instrument<SocketEvent, APIGatewayProxyResultV2>(
  observability,
  async (event) => {
    const { routeKey, connectionId, authorizer } = event.requestContext;
    const tenantId = authorizer?.tenantId;
    // Only an authorized $connect opens a connection, so every event carries its tenant.
    if (!tenantId) throw new Error(`${routeKey} without the authorizer's tenant`);
    observability.logger.appendKeys({ tenantId, connectionId, routeKey });
    if (routeKey === '$connect') {
      await store.open(connectionId, tenantId);
      observability.metrics.addMetric('Connections', MetricUnit.Count, 1);
      return { statusCode: 200 };
    }
    if (routeKey === '$disconnect') {
      await store.close(connectionId);
      return { statusCode: 200 };
    }
    const reply = await handleFrame(store, connectionId, tenantId, event.body);
    if (reply.type === 'error') observability.logger.info('frame refused', { code: reply.code });
    return { statusCode: 200, body: JSON.stringify(reply) };
  },
  { correlationIdPath: 'requestContext.requestId' },
);
