import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { ALB_CORRELATION_ID_PATH, createObservability, instrument, MetricUnit, TokenVerifier } from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { ControlPlaneStore } from '../../control-plane/store.ts';
import { loadRouterConfig } from './config.ts';
import { LambdaCellInvoker } from './lambda-invoker.ts';
import { routeRequest, type RouterDeps } from './router.ts';
import { RoutingCache, snapshotFromShipped } from './routing-cache.ts';

const observability = createObservability();
const { logger, metrics, tracer } = observability;
const config = loadRouterConfig(process.env);
// Short timeouts: a slow control plane must cost a request little, and the cache falls back.
const dynamo = tracer.captureAWSv3Client(
  new DynamoDBClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 500, requestTimeout: 1000 } }),
);
const store = new ControlPlaneStore(dynamo, config.controlPlaneTable);
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
  invoker: new LambdaCellInvoker(tracer.captureAWSv3Client(new LambdaClient({}))),
  observability,
};

export const handler = instrument<ALBEvent, ALBResult>(
  observability,
  (event) => routeRequest(event, deps),
  { correlationIdPath: ALB_CORRELATION_ID_PATH },
);
