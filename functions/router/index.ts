import { TokenVerifier } from '@item-master/shared/auth';
import { createLogging, MetricUnit, withLogging } from '@item-master/shared/logging';
import { CELL_INVOKE, CONTROL_PLANE_READ } from '@item-master/shared/sdk-timeouts';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { AwsApi } from './aws-api.ts';
import { loadRouterConfig } from './config.ts';
import { ControlPlaneReads } from './control-plane-reads.ts';
import { LambdaCellInvoker } from './lambda-invoker.ts';
import { routeRequest, type RouterDeps } from './router.ts';
import { CellCircuits } from './cell-circuits.ts';
import { TenantQuotas } from './quotas.ts';
import { FleetTable, RouterFleet } from './router-fleet.ts';
import { RoutingCache, snapshotFromShipped } from './routing-cache.ts';

// No X-Ray SDK and no SDK clients here: Lambda's active tracing records the invocation, and the
// calls the router makes are signed requests (docs/design/performance.md).
const logging = createLogging();
const { logger, metrics } = logging;
// Refreshes end between requests: their metrics go out on their own line, never under a request's cellId dimension.
const refreshMetrics = metrics.singleMetric();
const config = loadRouterConfig(process.env);
// Short timeouts: a hung control plane delays only a cold start, which then serves the shipped map.
const dynamodb = new AwsApi('dynamodb', CONTROL_PLANE_READ);
const store = new ControlPlaneReads(dynamodb, config.controlPlaneTable);
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
    refreshMetrics.addMetric('RoutingRefreshFailures', MetricUnit.Count, 1);
  },
  onRefresh: (snapshot) => refreshMetrics.addMetric('RoutingVersion', MetricUnit.NoUnit, snapshot.version),
});
const buckets: TenantQuotas = new TenantQuotas({ share: (tenantId): number => fleet.shareOf(tenantId) });
const fleet: RouterFleet = new RouterFleet({
  store: new FleetTable(dynamodb, config.fleetTable),
  activity: (seconds, instances): string[] => buckets.takeActivity(seconds, instances),
  busy: (tenantId, instances): boolean => buckets.isBusy(tenantId, instances),
  onError: (error) => {
    logger.warn('router fleet not counted: quotas keep the last share', { error, routerInstances: fleet.instances() });
    refreshMetrics.addMetric('FleetCountFailures', MetricUnit.Count, 1);
  },
});
const auth = new TokenVerifier(config.auth);
// Read the routing data, count the fleet and fetch the pool's signing keys during init. If the
// keys cannot be fetched, the first requests try again (and answer 503 until then).
await Promise.all([
  routing.current(),
  fleet.beat(),
  auth.hydrate().catch((error: unknown) => logger.warn('signing keys not fetched at init', { error })),
]);

const deps: RouterDeps = {
  auth,
  routing,
  invoker: new LambdaCellInvoker(new AwsApi('lambda', CELL_INVOKE)),
  quotas: { defaultQuota: config.defaultQuota, buckets },
  circuits: new CellCircuits(),
  observability: logging,
};

export const handler = withLogging<ALBEvent, ALBResult>(
  logging,
  // The ALB's trace header: the correlation id of every log line.
  (event) => event.headers?.['x-amzn-trace-id'],
  (event) => routeRequest(event, deps),
);
