import type { AuthResult, Requirement, Scope } from '@item-master/shared/auth';
import { allMethods, allowedMethods, matchRoute, type HttpMethod } from '@item-master/shared/contracts/routes';
import { errorBody } from '@item-master/shared/errors';
import { ID_RULE, isValidId, tenantIdOf } from '@item-master/shared/ids';
import { MetricUnit, type Logging } from '@item-master/shared/logging';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { routeTenant } from '../../routing/routing.ts';
import { cachedBucketOf } from './bucket-cache.ts';
import type { TenantQuota } from '@item-master/shared/contracts/quotas';
import type { CellCircuits } from './cell-circuits.ts';
import type { QuotaDecision } from './quotas.ts';
import type { CellTarget, RoutingSnapshot } from './routing-cache.ts';

/** Invokes one cell's API function with the original ALB event. */
export interface CellInvoker {
  invoke(cell: CellTarget, event: ALBEvent): Promise<ALBResult>;
}

/** A cell that could not answer: throttled (retry later) or broken. */
export class CellUnavailableError extends Error {
  constructor(
    readonly cellId: string,
    readonly retryable: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'CellUnavailableError';
  }
}

export interface RouterDeps {
  /** Checks the caller's bearer token: the shared TokenVerifier. */
  readonly auth: { authorize(authorization: string | undefined, required: Requirement): Promise<AuthResult> };
  /** The routing data in force: the cache in front of the control plane. */
  readonly routing: { current(): Promise<RoutingSnapshot>; fresh(): Promise<RoutingSnapshot> };
  readonly invoker: CellInvoker;
  /** Tenants' quotas: config's default, unless the routing data holds the tenant's own, enforced by this instance's buckets. */
  readonly quotas: { readonly defaultQuota: TenantQuota; readonly buckets: { admit(tenantId: string, quota: TenantQuota): QuotaDecision } };
  /** The cells this instance refuses itself for a moment after a throttle. */
  readonly circuits: Pick<CellCircuits, 'isOpen' | 'trip'>;
  readonly observability: Logging;
}

/** The scope the route table gives a method on a path; undefined where no route answers it. */
export function requiredScope(method: string, path: string): Scope | undefined {
  return matchRoute(path)?.methods[method as HttpMethod];
}

/**
 * The front door's whole job: answer health checks and preflights itself,
 * refuse any request without a valid token for its own tenant and scope,
 * find the tenant's cell, hand it the request (less the token) and stamp the
 * answer with `x-cell-id`. It never looks inside the request beyond the
 * tenant id and the token.
 */
export async function routeRequest(event: ALBEvent, deps: RouterDeps): Promise<ALBResult> {
  const { logger, metrics } = deps.observability;
  const method = event.httpMethod.toUpperCase();

  if (method === 'OPTIONS') {
    // A preflight names what the path answers, from the same table the cells route by.
    const route = matchRoute(event.path);
    const methods = route ? allowedMethods(route) : allMethods();
    return {
      statusCode: 204,
      headers: {
        allow: methods,
        'access-control-allow-origin': '*',
        'access-control-allow-methods': methods,
        'access-control-allow-headers': 'authorization, content-type, if-match, idempotency-key',
        'access-control-max-age': '600',
      },
      body: '',
    };
  }

  if (event.path === '/health') {
    if (method !== 'GET' && method !== 'HEAD') {
      return json(405, errorBody('method_not_allowed', `${method} is not allowed on /health`), {
        allow: 'GET, HEAD, OPTIONS',
      });
    }
    metrics.addMetric('HealthChecks', MetricUnit.Count, 1);
    // Healthy whatever the control plane's state: the router serves from its last good copy.
    const routing = await deps.routing.current();
    return json(200, {
      status: 'ok',
      cells: [...routing.cells.values()].map(({ cellId, status }) => ({ cellId, status })),
      routing: { version: routing.version, source: routing.source },
    });
  }

  const tenantId = tenantIdOf(event.path);
  if (tenantId === undefined) {
    return json(404, errorBody('not_found', `no route for ${method} ${event.path}`));
  }
  if (!isValidId(tenantId)) {
    return json(400, errorBody('validation_failed', 'invalid tenant id', [{ path: 'tenantId', message: ID_RULE }]));
  }

  // No route, no token check: nothing of the tenant is touched, and the answer is the cell's own.
  const route = matchRoute(event.path);
  if (!route) return json(404, errorBody('not_found', `no route for ${method} ${event.path}`));
  const scope = route.methods[method as HttpMethod];
  if (scope === undefined) {
    const allow = allowedMethods(route);
    return json(405, errorBody('method_not_allowed', `${method} is not allowed here`), { allow });
  }

  const auth = await deps.auth.authorize(authorizationOf(event), { tenantId, scope });
  if (!auth.ok) {
    // The tenant in the path is only a claim until a token proves it: logged as requested, never the token.
    logger.warn('request refused', { status: auth.status, reason: auth.message, requestedTenantId: tenantId });
    metrics.addMetric('AuthRefusals', MetricUnit.Count, 1);
    return json(auth.status, errorBody(auth.code, auth.message), { ...auth.headers });
  }
  logger.appendKeys({ clientId: auth.caller.clientId, tenantId });
  // After the token (a stranger cannot spend a tenant's quota), before any cell.
  const routing = await deps.routing.current();
  const quota = routing.quotas.get(tenantId) ?? deps.quotas.defaultQuota;
  const { admitted, headers: quotaHeaders } = deps.quotas.buckets.admit(tenantId, quota);
  if (!admitted) {
    // One metric without a tenant dimension; which tenants are refused most, a Contributor Insights rule reads from this line.
    logger.info('over quota', { refusal: 'quota', quotaRate: quota.rate, quotaBurst: quota.burst });
    metrics.addMetric('QuotaRefusals', MetricUnit.Count, 1);
    return json(
      429,
      errorBody(
        'quota_exceeded',
        `tenant ${tenantId} is over its quota of ${quota.rate} requests a second (bursts of ${quota.burst}): retry after ${quotaHeaders['retry-after']} s`,
      ),
      quotaHeaders,
    );
  }
  const started = performance.now();
  let { cellId, result } = await routeToCell(routing, tenantId, event, deps);
  if (result.statusCode === MISDIRECTED) {
    // The cell serves this tenant no more (or not yet): the map changed since it was read. Once more, by the map as it is now.
    metrics.addMetric('MisdirectedRetries', MetricUnit.Count, 1);
    logger.info('cell refused the tenant as misdirected: re-reading the map', { refusedBy: cellId });
    ({ cellId, result } = await routeToCell(await mapAtLeast(epochOf(result), deps), tenantId, event, deps));
    if (result.statusCode === MISDIRECTED) {
      // The tenant is between cells (a move's fenced window): the client retries shortly.
      result = json(503, errorBody('tenant_moving', 'the tenant is moving between cells, retry shortly'), { 'retry-after': '1' });
    }
  }
  logger.appendKeys({ cellId });
  metrics.addDimension('cellId', cellId);
  metrics.addMetric('Requests', MetricUnit.Count, 1);
  metrics.addMetric('Latency', MetricUnit.Milliseconds, performance.now() - started);
  metrics.addMetric('CellErrors', MetricUnit.Count, result.statusCode >= 500 ? 1 : 0);
  return { ...result, headers: { ...result.headers, ...quotaHeaders, 'x-cell-id': cellId } };
}

/** The status a cell answers for a tenant it does not serve (the cell API's ownership check). */
const MISDIRECTED = 421;

/**
 * How long the router waits for the map version a refusing cell already
 * holds. A move or a pin writes the cells' ownership records first and the
 * map version right after: between the two, a cell refuses and the map does
 * not say where the tenant went yet.
 */
export const MAP_CATCH_UP_MS = 1_000;
const MAP_REREAD_MS = 50;

/** The epoch of the ownership record a cell refused by (its `x-cell-epoch`): the map version that says who serves the tenant. */
function epochOf(result: ALBResult): number | undefined {
  const epoch = Number(result.headers?.['x-cell-epoch']);
  return Number.isInteger(epoch) ? epoch : undefined;
}

/** The routing as the control plane has it now, re-read until it is at least `epoch` or `MAP_CATCH_UP_MS` has passed. */
async function mapAtLeast(epoch: number | undefined, deps: RouterDeps): Promise<RoutingSnapshot> {
  const giveUpAt = Date.now() + MAP_CATCH_UP_MS;
  let routing = await deps.routing.fresh();
  while (epoch !== undefined && routing.version < epoch && Date.now() < giveUpAt) {
    await new Promise((resolve) => setTimeout(resolve, MAP_REREAD_MS));
    routing = await deps.routing.fresh();
  }
  return routing;
}

/** This instance's tenant → bucket answers: the routing decision's SHA-256, once per tenant seen lately. */
const bucketOfTenant = cachedBucketOf();

/** Sends the request to the cell the routing gives the tenant, or answers for a cell that is not serving. */
async function routeToCell(
  routing: RoutingSnapshot,
  tenantId: string,
  event: ALBEvent,
  deps: RouterDeps,
): Promise<{ cellId: string; result: ALBResult }> {
  const { cellId, reason } = routeTenant(routing.map, routing.overrides, tenantId, bucketOfTenant);
  const cell = routing.cells.get(cellId);
  if (!cell || cell.status === 'inactive') {
    // Neither a hang nor a guess: the client comes back once the cell serves again or the tenant has moved.
    deps.observability.logger.warn('tenant routed to a cell that is not serving', {
      routingVersion: routing.version,
      reason,
      cellStatus: cell?.status ?? 'unregistered',
      cellId,
    });
    return { cellId, result: json(503, errorBody('cell_unavailable', `cell ${cellId} is not serving, retry later`), { 'retry-after': '30' }) };
  }
  return { cellId, result: await invokeCell(cell, withoutAuthorization(event), deps) };
}

/** A cell at its reserved concurrency: its requests only, refused with a short wait. */
function cellBusy(cellId: string): ALBResult {
  return json(503, errorBody('cell_busy', `cell ${cellId} is at its concurrency limit, retry shortly`), { 'retry-after': '1' });
}

async function invokeCell(cell: CellTarget, event: ALBEvent, deps: RouterDeps): Promise<ALBResult> {
  const { logger, metrics } = deps.observability;
  if (deps.circuits.isOpen(cell.cellId)) {
    // Shed before the work: no Invoke for a cell that was throttled a moment ago.
    metrics.addMetric('CellBusyShed', MetricUnit.Count, 1);
    return cellBusy(cell.cellId);
  }
  try {
    return sanitize(await deps.invoker.invoke(cell, event));
  } catch (error) {
    if (!(error instanceof CellUnavailableError)) throw error;
    if (error.retryable) {
      deps.circuits.trip(cell.cellId);
      logger.warn('cell throttled: refusing its requests for a moment', { cellId: cell.cellId });
      metrics.addMetric('CellThrottles', MetricUnit.Count, 1);
      return cellBusy(cell.cellId);
    }
    logger.error('cell did not answer', { error, cellId: cell.cellId });
    return json(502, errorBody('cell_error', `cell ${cell.cellId} failed to answer`));
  }
}

/** The Authorization header; two of them are as good as a malformed one. */
function authorizationOf(event: ALBEvent): string | undefined {
  const values = event.multiValueHeaders?.authorization;
  if (values) return values.length === 1 ? values[0] : values.length === 0 ? undefined : 'multiple';
  return event.headers?.authorization;
}

/** Cells trust the router (only it may invoke them), so the token stops here. */
function withoutAuthorization(event: ALBEvent): ALBEvent {
  const { authorization: _h, ...headers } = event.headers ?? {};
  const { authorization: _m, ...multiValueHeaders } = event.multiValueHeaders ?? {};
  return {
    ...event,
    ...(event.headers && { headers }),
    ...(event.multiValueHeaders && { multiValueHeaders }),
  };
}

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): ALBResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

/**
 * The target group runs with multi-value headers off: the ALB reads `headers`
 * only, and a header value that is not a string is a 502. So every value
 * becomes a string, and values a cell put in `multiValueHeaders` are folded
 * into `headers` (comma-joined, as HTTP allows for repeated headers).
 */
function sanitize(result: ALBResult): ALBResult {
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) {
    headers[name.toLowerCase()] = values.map(String).join(', ');
  }
  for (const [name, value] of Object.entries(result.headers ?? {})) {
    headers[name.toLowerCase()] = String(value);
  }
  const { multiValueHeaders: _dropped, ...rest } = result;
  return { ...rest, headers };
}
