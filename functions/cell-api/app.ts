import { Router } from '@aws-lambda-powertools/event-handler/http';
import type { RequestContext } from '@aws-lambda-powertools/event-handler/types';
import {
  allowedMethods,
  errorBody,
  HTTP_METHODS,
  isValidId,
  MetricUnit,
  ROUTES,
  routeTableProblems,
  type HttpMethod,
  type Observability,
  type Route,
} from '@item-master/shared';
import type { ZodObject, ZodRawShape, ZodType } from 'zod';
import { IdempotencyKeyReusedError, WorkflowNotStartedError, type OrderStore } from './order-store.ts';
import { idempotencyKeySchema, idSchema, listQuerySchema, orderInputSchema, patchSchemaOf } from './schema.ts';
import type { TenantDirectory } from './directory.ts';
import { OwnershipUnreadableError, type Ownership, type OwnershipCache } from './ownership.ts';
import type { ChangeJournal } from './change-journal.ts';
import { WriteWindowClosedError, type WriteDeadlines } from './write-deadline.ts';
import { InvalidCursorError, NotFoundError, VersionConflictError, type Versioned, type VersionedStore } from './versioned-store.ts';

/** Largest request body accepted (a stored item must stay far below DynamoDB's 400 KB). */
export const MAX_BODY_BYTES = 256 * 1024;

/** An error that is the client's to fix: it becomes a 4xx with the standard error body. */
export class ClientError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

type Handler = (ctx: RequestContext) => Promise<Response>;
type MethodHandlers = Partial<Record<HttpMethod, Handler>>;
/** Handlers by route path and method: every row of the route table, and nothing else. */
export type Handlers = Partial<Record<Route['path'], MethodHandlers>>;

/**
 * Registers each route of the table with its handlers, and a 405 with the
 * route's `Allow` for every other method. HEAD is GET without the body. A
 * route without a handler for one of its methods, or a handler for a method
 * or path the table does not list, is a mistake caught at init.
 */
export function registerRoutes(app: Router, routes: readonly Route[], handlers: Handlers): void {
  const problems = routeTableProblems(routes);
  for (const path of Object.keys(handlers)) {
    if (!routes.some((route) => route.path === path)) problems.push(`a handler for ${path}, which no route lists`);
  }
  for (const route of routes) {
    const own = { ...handlers[route.path] };
    const get = own.GET;
    if (get && route.methods.HEAD && !own.HEAD) {
      own.HEAD = async (ctx) => {
        const answer = await get(ctx);
        return new Response(null, { status: answer.status, headers: answer.headers });
      };
    }
    for (const method of HTTP_METHODS) {
      if (route.methods[method] !== undefined && !own[method]) problems.push(`no handler for ${method} ${route.path}`);
      if (route.methods[method] === undefined && own[method]) problems.push(`a handler for ${method} ${route.path}, which the route does not list`);
    }
    const methods = HTTP_METHODS.filter((method) => route.methods[method] !== undefined && own[method]);
    for (const method of methods) app.route(own[method]!, { method, path: route.path });
    const allow = allowedMethods(route);
    app.route(
      async ({ req }) => {
        throw new ClientError(405, 'method_not_allowed', `${req.method} is not allowed here`, undefined, { allow });
      },
      { method: HTTP_METHODS.filter((method) => !methods.includes(method)), path: route.path },
    );
  }
  if (problems.length > 0) throw new Error(`the cell API and the route table disagree: ${problems.join('; ')}`);
}

/**
 * A versioned entity's CRUD API: its store, and the schemas of its `PUT`
 * body (the whole record) and its `PATCH` body (see `patchSchemaOf`).
 */
export interface EntityApi {
  readonly store: VersionedStore<Versioned>;
  readonly input: ZodType<object>;
  readonly patch: ZodType<object>;
}

/** An entity's API from its store and its `PUT` body's schema; the `PATCH` body's is derived from it unless given. */
export function entityApi<S extends ZodRawShape>(
  store: VersionedStore<Versioned>,
  input: ZodObject<S>,
  patch: ZodType<object> = patchSchemaOf(input),
): EntityApi {
  return { store, input, patch };
}

/** What the cell API serves: versioned entities (the items, and any a fork adds) and the orders. */
export interface CellApiParts {
  readonly entities: readonly EntityApi[];
  readonly orders: OrderStore;
  /**
   * Which tenants this cell serves (its ownership record): a request for
   * another cell's tenant is refused as misdirected, read or write.
   * @default - every tenant routed here is served
   */
  readonly ownership?: Pick<OwnershipCache, 'check' | 'cellId'>;
  /**
   * The cell's tenant directory: a tenant's entry is recorded before its
   * first write through this instance.
   * @default - none recorded
   */
  readonly directory?: Pick<TenantDirectory, 'record'>;
  /**
   * Holds each write request to its ownership answer's deadline; the table
   * client it guards refuses writes past it.
   * @default - no deadline
   */
  readonly writeDeadlines?: Pick<WriteDeadlines, 'run'>;
  /**
   * Journals the writes of a tenant that is moving away (ChangeJournal), so
   * that the move copies what changed instead of the whole tenant.
   * @default - no journal: a move must not run while this cell serves
   */
  readonly changeJournal?: Pick<ChangeJournal, 'run'>;
}

/** Methods that read: they never record a tenant in the directory. */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The status of a request for a tenant another cell serves: the router re-reads its map and retries once. */
export const MISDIRECTED = 421;

/**
 * The handlers of an entity's two route-table rows (`entityRoutes`): a page
 * of its records, and one record's read, replace (`If-Match` optional),
 * patch (`If-Match` required) and delete.
 */
export function entityHandlers({ store, input, patch }: EntityApi): Handlers {
  const { collection, idField } = store.entity;
  const recordParams = (params: Record<string, string>) => ({
    tenantId: parseId(params.tenantId, 'tenantId'),
    id: parseId(params[idField], idField),
  });
  const collectionRoute: MethodHandlers = {
    GET: async ({ params, req }) => {
      const tenantId = parseId(params.tenantId, 'tenantId');
      const query = parse(listQuerySchema, Object.fromEntries(new URL(req.url).searchParams), 'query');
      return json(200, await store.list(tenantId, query.limit, query.cursor));
    },
  };
  const recordRoute: MethodHandlers = {
    GET: async ({ params }) => {
      const { tenantId, id } = recordParams(params);
      const record = await store.get(tenantId, id);
      if (!record) throw new NotFoundError(store.entity.name, id);
      return recordResponse(200, record);
    },
    PUT: async ({ params, req }) => {
      const { tenantId, id } = recordParams(params);
      const body = parse(input, await readJson(req), 'body');
      const { record, created } = await store.put(tenantId, id, body, ifMatch(req, false));
      return recordResponse(created ? 201 : 200, record);
    },
    PATCH: async ({ params, req }) => {
      const { tenantId, id } = recordParams(params);
      const expected = ifMatch(req, true);
      const body = parse(patch, await readJson(req), 'body');
      return recordResponse(200, await store.patch(tenantId, id, body, expected));
    },
    DELETE: async ({ params, req }) => {
      const { tenantId, id } = recordParams(params);
      await store.delete(tenantId, id, ifMatch(req, false));
      return new Response(null, { status: 204 });
    },
  };
  return { [`/tenants/:tenantId/${collection}`]: collectionRoute, [`/tenants/:tenantId/${collection}/:${idField}`]: recordRoute };
}

/**
 * The cell's HTTP API over the ALB event the router hands over unchanged,
 * routed by the route table: every other method on a known path is a 405
 * with `Allow`, every unknown path a 404. Every row of `routes` must have
 * its handlers here, and every handler its row.
 */
export function createApp(parts: CellApiParts, observability: Pick<Observability, 'logger' | 'metrics'>, routes: readonly Route[] = ROUTES): Router {
  const { orders } = parts;
  const app = new Router({ logger: observability.logger });
  const handlers: Handlers = Object.assign({}, ...parts.entities.map(entityHandlers));
  const { ownership, directory, writeDeadlines, changeJournal } = parts;
  if (ownership || directory) {
    // Before any handler: a cell never reads or writes a tenant it does not serve, and knows every tenant that wrote to it.
    app.use(async ({ reqCtx, next }) => {
      const tenantId = reqCtx.params.tenantId;
      const writes = !READS.has(reqCtx.req.method);
      let judged: Ownership | undefined;
      if (tenantId !== undefined && ownership) {
        judged = await ownership.check(tenantId);
        if (!judged.owned) {
          observability.metrics.addMetric('MisdirectedRequests', MetricUnit.Count, 1);
          return json(
            MISDIRECTED,
            errorBody('misdirected', `tenant ${tenantId} is served by another cell`, { cellId: ownership.cellId, epoch: judged.epoch }),
            {
              'x-cell-epoch': String(judged.epoch),
            },
          );
        }
        if (writes && judged.fenced) return tenantMoving(tenantId);
      }
      const handle = async () => {
        if (tenantId !== undefined && directory && writes && isValidId(tenantId)) await directory.record(tenantId);
        const journal = writes && tenantId !== undefined ? judged?.journal : undefined;
        if (journal !== undefined && changeJournal) await changeJournal.run({ moveId: journal, tenantId: tenantId! }, next);
        else await next();
      };
      if (judged && writes && writeDeadlines) await writeDeadlines.run(judged.writeDeadline, handle);
      else await handle();
    });
  }

  handlers['/tenants/:tenantId/orders'] = {
    POST: async ({ params, req }) => {
      const tenantId = parseId(params.tenantId, 'tenantId');
      const key = req.headers.get('idempotency-key');
      if (key === null) {
        throw new ClientError(400, 'validation_failed', 'send an Idempotency-Key header: repeating the request with it never orders twice', [
          { path: 'headers.idempotency-key', message: 'is required' },
        ]);
      }
      const idempotencyKey = parse(idempotencyKeySchema, key, 'headers.idempotency-key');
      const input = parse(orderInputSchema, await readJson(req), 'body');
      const placed = await orders.place(tenantId, idempotencyKey, input);
      // Orders this cell took (a replay is not a new one): the dashboard's orders per cell.
      if (placed.created) observability.metrics.addMetric('OrdersPlaced', MetricUnit.Count, 1);
      return json(
        202,
        { orderId: placed.orderId, status: placed.status },
        {
          location: `/tenants/${tenantId}/orders/${placed.orderId}`,
          ...(!placed.created && { 'idempotent-replayed': 'true' }),
        },
      );
    },
  };

  handlers['/tenants/:tenantId/orders/:orderId'] = {
    GET: async ({ params }) => {
      const tenantId = parseId(params.tenantId, 'tenantId');
      const orderId = parseId(params.orderId, 'orderId');
      return json(200, await orders.get(tenantId, orderId));
    },
  };
  registerRoutes(app, routes, handlers);

  app.errorHandler(ClientError, async (error) => json(error.statusCode, errorBody(error.code, error.message, error.details), error.headers));
  app.errorHandler(NotFoundError, async (error) => json(404, errorBody('not_found', error.message)));
  app.errorHandler(OwnershipUnreadableError, async (error) => {
    observability.logger.error('the cell cannot read its ownership record', { error });
    return json(503, errorBody('ownership_unreadable', 'the cell cannot tell which tenants it serves, retry later'), { 'retry-after': '5' });
  });
  app.errorHandler(WriteWindowClosedError, async (error, { params }) => {
    observability.logger.warn('a write missed its deadline', { error });
    return tenantMoving(params.tenantId ?? '');
  });
  app.errorHandler(VersionConflictError, async (error) =>
    json(409, errorBody('version_conflict', error.message, { expected: error.expected, actual: error.actual }), {
      etag: etag(error.actual),
    }),
  );
  app.errorHandler(IdempotencyKeyReusedError, async (error) =>
    json(422, errorBody('idempotency_key_reused', error.message, { orderId: error.orderId })),
  );
  app.errorHandler(WorkflowNotStartedError, async (error) => {
    observability.logger.error('order workflow not started', { orderId: error.orderId, error: error.cause });
    return json(503, errorBody('service_unavailable', `${error.message}: repeat the request with the same Idempotency-Key`), {
      'retry-after': '1',
    });
  });
  app.errorHandler(InvalidCursorError, async (error) =>
    json(400, errorBody('validation_failed', error.message, [{ path: 'query.cursor', message: error.message }])),
  );
  // A path parameter with a broken %-escape fails to decode before any handler runs.
  app.errorHandler(URIError, async () => json(400, errorBody('bad_request', 'the path is not validly encoded')));
  app.notFound(async (_error, { req }) => json(404, errorBody('not_found', `no route for ${req.method} ${new URL(req.url).pathname}`)));
  app.errorHandler(Error, async (error) => {
    const fault = tableFault(error);
    if (fault) {
      // The cell's own fault, not the request's: the client retries, the cell's metrics and alarms see it.
      observability.logger.error('the cell cannot use its table', { error, fault });
      observability.metrics.addMetric(fault === 'throttled' ? 'TableThrottles' : 'TableUnavailable', MetricUnit.Count, 1);
      return fault === 'throttled'
        ? json(503, errorBody('throttled', 'the cell is over its capacity, retry later'), { 'retry-after': '1' })
        : json(503, errorBody('table_unavailable', 'the cell cannot reach its data, retry later'), { 'retry-after': '5' });
    }
    observability.logger.error('unhandled error', { error });
    return json(500, errorBody('internal_error', 'the request could not be completed'));
  });
  return app;
}

const THROTTLED = new Set(['ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded']);
const UNREACHABLE = new Set(['ResourceNotFoundException', 'TimeoutError', 'InternalServerError', 'ServiceUnavailable', 'RequestTimeout']);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Whether an error is the cell's table failing it rather than a bug: the
 * table throttled, missing (deleted, or never created), past its timeouts,
 * failing on DynamoDB's side, or out of the network's reach.
 */
export function tableFault(error: Error): 'throttled' | 'unreachable' | undefined {
  if (THROTTLED.has(error.name)) return 'throttled';
  if (UNREACHABLE.has(error.name) || NETWORK.has((error as NodeJS.ErrnoException).code ?? '')) return 'unreachable';
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status !== undefined && status >= 500 ? 'unreachable' : undefined;
}

/** A write of a tenant whose move is in its fenced window: refused, never lost; the client retries after a second. */
function tenantMoving(tenantId: string): Response {
  return json(503, errorBody('tenant_moving', `tenant ${tenantId} is moving to another cell: writes resume within seconds, retry`), {
    'retry-after': '1',
  });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

function etag(version: number): string {
  return `"${version}"`;
}

function recordResponse(status: number, record: Versioned): Response {
  return json(status, record, { etag: etag(record.version) });
}

function parse<T>(schema: ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
  throw new ClientError(400, 'validation_failed', `the ${where} is not valid`, details);
}

function parseId(value: string | undefined, name: string): string {
  return parse(idSchema, value, `path.${name}`);
}

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES) {
    throw new ClientError(413, 'payload_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  if (text.trim() === '') throw new ClientError(400, 'bad_request', 'a JSON body is required');
  try {
    return JSON.parse(text);
  } catch {
    throw new ClientError(400, 'invalid_json', 'the body is not valid JSON');
  }
}

/** `If-Match: "3"` (or `3`, or `W/"3"`) → 3. Required for PATCH: 428 without it. */
function ifMatch(req: Request, required: true): number;
function ifMatch(req: Request, required: false): number | undefined;
function ifMatch(req: Request, required: boolean): number | undefined {
  const header = req.headers.get('if-match');
  if (header === null) {
    if (!required) return undefined;
    throw new ClientError(428, 'precondition_required', 'send If-Match with the version you read (its ETag)');
  }
  const match = /^(?:W\/)?"?(\d{1,15})"?$/.exec(header.trim());
  if (!match) {
    throw new ClientError(400, 'validation_failed', 'If-Match must be a version such as "3"', [
      { path: 'headers.if-match', message: 'must be a version' },
    ]);
  }
  return Number(match[1]);
}
