import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import {
  ALB_CORRELATION_ID_PATH,
  CELL_INVOKE,
  CONTROL_PLANE_READ,
  createObservability,
  instrument,
  MetricUnit,
  sdkClientConfig,
  TokenVerifier,
} from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { ControlPlaneReader } from '../../control-plane/reader.ts';
import { loadRouterConfig } from './config.ts';
import { LambdaCellInvoker } from './lambda-invoker.ts';
import { routeRequest, type RouterDeps } from './router.ts';
import { RoutingCache, snapshotFromShipped } from './routing-cache.ts';

const observability = createObservability();
const { logger, metrics, tracer } = observability;
const config = loadRouterConfig(process.env);
// Short timeouts: a hung control plane delays only a cold start, which then serves the shipped map.
const dynamo = tracer.captureAWSv3Client(new DynamoDBClient(sdkClientConfig(CONTROL_PLANE_READ)));
const store = new ControlPlaneReader(dynamo, config.controlPlaneTable);
const routing = new RoutingCache({
  load: () => store.readRouting(),
  shipped: snapshotFromShipped(config.shippedRouting),
  refreshMs: config.refreshMs,
  onRefreshError: (error, serving) => {
    logger.warn('control plane unreachable: serving the last good routing', {
      error,
      routingVersion: serving.version,
      routingSource: serving.source,
    });
    metrics.addMetric('RoutingRefreshFailures', MetricUnit.Count, 1);
  },
});
const auth = new TokenVerifier(config.auth);
// Read the map, the registry and the pool's signing keys during init. If the
// keys cannot be fetched, the first requests try again (and answer 503 until then).
await Promise.all([
  routing.current(),
  auth.hydrate().catch((error: unknown) => logger.warn('signing keys not fetched at init', { error })),
]);

const deps: RouterDeps = {
  auth,
  routing,
  invoker: new LambdaCellInvoker(tracer.captureAWSv3Client(new LambdaClient(sdkClientConfig(CELL_INVOKE)))),
  observability,
};

export const handler = instrument<ALBEvent, ALBResult>(
  observability,
  (event) => routeRequest(event, deps),
  { correlationIdPath: ALB_CORRELATION_ID_PATH },
);
