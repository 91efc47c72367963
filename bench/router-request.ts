/**
 * The router's own work per request, in this process, without the network:
 * the token check (verified each time, and remembered), the metrics flush
 * (one EMF line), and the whole of `routeRequest` with a cell that answers
 * at once. What is left of the router's CPU in the throughput run is Node's
 * HTTP and the Lambda hop.
 */
import { Console } from 'node:console';
import { createWriteStream } from 'node:fs';
import { TokenVerifier, tokenVerifierOptionsFromEnv } from '../layers/shared/src/auth.ts';
import { createLogging, MetricUnit } from '../layers/shared/src/logging.ts';
import { evenSplit } from '../routing/routing.ts';
import { routeRequest, type RouterDeps } from '../functions/router/router.ts';
import type { RoutingSnapshot } from '../functions/router/routing-cache.ts';
import { CellCircuits } from '../functions/router/cell-circuits.ts';
import { TenantQuotas } from '../functions/router/quotas.ts';

export interface RouterRequestFigures {
  readonly iterations: number;
  /** µs per token check: signature verified every time, and remembered. */
  readonly verifyUs: number;
  readonly cachedVerifyUs: number;
  /** µs per metrics flush of the router's three metrics and one dimension, written to /dev/null. */
  readonly flushUs: number;
  /** µs per `routeRequest`, token remembered, cell answering at once, metrics flushed. */
  readonly routeRequestUs: number;
  /** µs per `routeRequest` refused over the tenant's quota (429, no cell invoked), metrics flushed. */
  readonly refusedRequestUs: number;
}

async function timeUs(iterations: number, run: (i: number) => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < Math.min(iterations, 500); i++) await run(i);
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await run(i);
  return Number(process.hrtime.bigint() - started) / iterations / 1000;
}

export async function benchRouterRequest(
  routerEnv: Record<string, string>,
  token: string,
  tenantId: string,
  iterations: number,
): Promise<RouterRequestFigures> {
  const auth = tokenVerifierOptionsFromEnv(routerEnv);
  const plain = new TokenVerifier(auth);
  const cached = new TokenVerifier({ ...auth, cachedTokens: 10_000 });
  await Promise.all([plain.hydrate(), cached.hydrate()]);
  const required = { tenantId, scope: 'items.read' } as const;
  const header = `Bearer ${token}`;

  // Powertools writes EMF lines and logs to its own console: here, to /dev/null.
  const sink = createWriteStream('/dev/null');
  const logging = createLogging('bench');
  for (const utility of [logging.metrics, logging.logger] as unknown as Array<{ console: Console }>)
    utility.console = new Console({ stdout: sink, stderr: sink });
  const flush = () => {
    logging.metrics.addDimension('cellId', 'cell-1');
    logging.metrics.addMetric('Requests', MetricUnit.Count, 1);
    logging.metrics.addMetric('Latency', MetricUnit.Milliseconds, 3.2);
    logging.metrics.addMetric('CellErrors', MetricUnit.Count, 0);
    logging.metrics.publishStoredMetrics();
  };

  const cells = ['cell-1', 'cell-2', 'cell-3'];
  const routing: RoutingSnapshot = {
    version: 1,
    source: 'store',
    map: evenSplit(cells),
    overrides: {},
    cells: new Map(cells.map((cellId) => [cellId, { cellId, status: 'active' as const, functionName: cellId }])),
    quotas: new Map(),
  };
  const answer = { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"itemId":"bench-1"}' };
  const deps: RouterDeps = {
    auth: cached,
    routing: { current: async () => routing, fresh: async () => routing },
    invoker: { invoke: async () => answer },
    // A quota no request reaches: each request pays for its bucket, none is refused.
    quotas: { defaultQuota: { rate: 100_000, burst: 1_000_000 }, buckets: new TenantQuotas() },
    circuits: new CellCircuits(),
    observability: logging,
  };
  // The first request takes the only token; every one after it is refused.
  const overQuota: RouterDeps = { ...deps, quotas: { defaultQuota: { rate: 1, burst: 1 }, buckets: new TenantQuotas({ now: () => 0 }) } };
  const event = {
    httpMethod: 'GET',
    path: `/tenants/${tenantId}/items/bench-1`,
    headers: { authorization: header, 'x-amzn-trace-id': 'Root=1-00000000-000000000000000000000000' },
    queryStringParameters: {},
    body: null,
    isBase64Encoded: false,
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/bench/0' } },
  };

  const figures = {
    iterations,
    verifyUs: await timeUs(iterations, () => plain.authorize(header, required)),
    cachedVerifyUs: await timeUs(iterations, () => cached.authorize(header, required)),
    flushUs: await timeUs(iterations, flush),
    routeRequestUs: await timeUs(iterations, async () => {
      logging.logger.resetKeys();
      await routeRequest(event, deps);
      logging.metrics.publishStoredMetrics();
    }),
    refusedRequestUs: await timeUs(iterations, async () => {
      logging.logger.resetKeys();
      await routeRequest(event, overQuota);
      logging.metrics.publishStoredMetrics();
    }),
  };
  sink.end();
  return figures;
}
