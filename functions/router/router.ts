import { errorBody, isValidId, ID_RULE, MetricUnit, tenantIdOf, type Observability } from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { cellFor, type BucketMap } from './routing.ts';

/** Invokes one cell's API function with the original ALB event. */
export interface CellInvoker {
  invoke(cellId: string, event: ALBEvent): Promise<ALBResult>;
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
  /** The cells, in the order the bucket map was built from. */
  readonly cells: readonly string[];
  readonly map: BucketMap;
  readonly invoker: CellInvoker;
  readonly observability: Pick<Observability, 'logger' | 'metrics'>;
}

const ALLOWED_METHODS = 'GET, PUT, PATCH, DELETE, OPTIONS';

/**
 * The front door's whole job: answer health checks and preflights itself,
 * find the tenant's cell, hand it the request untouched and stamp the answer
 * with `x-cell-id`. It never looks inside the request beyond the tenant id.
 */
export async function routeRequest(event: ALBEvent, deps: RouterDeps): Promise<ALBResult> {
  const { logger, metrics } = deps.observability;
  const method = event.httpMethod.toUpperCase();

  if (method === 'OPTIONS') {
    return {
      statusCode: 204,
      headers: {
        allow: ALLOWED_METHODS,
        'access-control-allow-origin': '*',
        'access-control-allow-methods': ALLOWED_METHODS,
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
    return json(200, { status: 'ok', cells: deps.cells });
  }

  const tenantId = tenantIdOf(event.path);
  if (tenantId === undefined) {
    return json(404, errorBody('not_found', `no route for ${method} ${event.path}`));
  }
  if (!isValidId(tenantId)) {
    return json(
      400,
      errorBody('validation_failed', 'invalid tenant id', [{ path: 'tenantId', message: ID_RULE }]),
    );
  }

  const cellId = cellFor(deps.map, tenantId);
  logger.appendKeys({ cellId, tenantId });
  metrics.addDimension('cellId', cellId);
  const started = performance.now();
  let result: ALBResult;
  try {
    result = sanitize(await deps.invoker.invoke(cellId, event));
  } catch (error) {
    if (!(error instanceof CellUnavailableError)) throw error;
    logger.error('cell did not answer', { error });
    result = error.retryable
      ? json(503, errorBody('cell_unavailable', `cell ${cellId} is busy, retry later`), {
          'retry-after': '1',
        })
      : json(502, errorBody('cell_error', `cell ${cellId} failed to answer`));
  }
  metrics.addMetric('Requests', MetricUnit.Count, 1);
  metrics.addMetric('Latency', MetricUnit.Milliseconds, performance.now() - started);
  metrics.addMetric('CellErrors', MetricUnit.Count, result.statusCode >= 500 ? 1 : 0);
  return withHeader(result, 'x-cell-id', cellId);
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

function withHeader(result: ALBResult, name: string, value: string): ALBResult {
  return { ...result, headers: { ...result.headers, [name]: value } };
}
