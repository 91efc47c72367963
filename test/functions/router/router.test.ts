import { createObservability, tenantIdOf, TokenVerifier } from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { evenSplit } from '../../../routing/routing.ts';
import { loadRouterConfig } from '../../../functions/router/config.ts';
import { AwsApi, AwsApiError } from '../../../functions/router/aws-api.ts';
import { LambdaCellInvoker } from '../../../functions/router/lambda-invoker.ts';
import { CELL_INVOKE } from '../../../layers/shared/src/sdk-timeouts.ts';
import { awsEnv, startStubApi, type StubAnswer, type StubRequest } from '../../support/aws-api.ts';
import { CellUnavailableError, requiredScope, routeRequest, type CellInvoker, type RouterDeps } from '../../../functions/router/router.ts';
import { allowedMethods, ROUTES } from '../../../layers/shared/src/contracts/routes.ts';
import { SCOPES } from '../../../layers/shared/src/contracts/scopes.ts';
import type { CellTarget, RoutingSnapshot } from '../../../functions/router/routing-cache.ts';
import { CellCircuits } from '../../../functions/router/cell-circuits.ts';
import { TenantQuotas } from '../../../functions/router/quotas.ts';
import { albEvent } from '../../support/alb.ts';
import { scopeOf, TEST_POOL_ID, TEST_RESOURCE_SERVER, testIssuer, type TestIssuer } from '../../support/tokens.ts';
import { cellOfBucket } from '../../support/routing.ts';

const cells = ['cell-1', 'cell-2', 'cell-3'];
const map = evenSplit(cells);
const target = (cellId: string, status: CellTarget['status'] = 'active'): CellTarget => ({
  cellId,
  status,
  functionName: `arn:aws:lambda:us-east-1:123456789012:function:item-master-dev-${cellId}-api`,
});
const snapshot: RoutingSnapshot = {
  version: 7,
  source: 'store',
  map,
  overrides: {},
  cells: new Map(cells.map((cellId) => [cellId, target(cellId)])),
  quotas: new Map(),
};

/** A cell invoker that records which cell got which request. */
function recordingInvoker(answer: (cellId: string, event: ALBEvent) => ALBResult | Promise<ALBResult>) {
  const calls: Array<{ cellId: string; event: ALBEvent }> = [];
  const invoker: CellInvoker = {
    invoke: async ({ cellId }, event) => {
      calls.push({ cellId, event });
      return answer(cellId, event);
    },
  };
  return { invoker, calls };
}

function deps(invoker: CellInvoker, routing: RoutingSnapshot = snapshot, fresh: RoutingSnapshot = routing): RouterDeps {
  // As on Lambda, where the middleware publishes and clears metrics after each invocation.
  const observability = createObservability(undefined);
  observability.metrics.clearMetrics();
  return {
    auth: verifier,
    routing: { current: async () => routing, fresh: async () => fresh },
    invoker,
    quotas: { defaultQuota: { rate: 1_000, burst: 1_000 }, buckets: new TenantQuotas() },
    circuits: new CellCircuits(),
    observability,
  };
}

let issuer: TestIssuer;
let verifier: TokenVerifier;
beforeAll(async () => {
  issuer = await testIssuer();
  verifier = new TokenVerifier({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: issuer.url });
});
afterAll(() => issuer.close());

/** An ALB event carrying a valid token of the path's tenant with every scope. */
async function signed(method: string, path: string, options: Parameters<typeof albEvent>[2] = {}): Promise<ALBEvent> {
  const { access_token } = await issuer.issue({ tenantId: tenantIdOf(path) ?? 'nobody' });
  return albEvent(method, path, { ...options, headers: { authorization: `Bearer ${access_token}`, ...options.headers } });
}

function withoutToken(headers: ALBEvent['headers']) {
  const { authorization: _token, ...rest } = headers ?? {};
  return rest;
}

const ok = (): ALBResult => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{}' });

describe('routeRequest', () => {
  it("sends each tenant's request, less its token, to the cell its bucket maps to, and says which", async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const reached = new Set<string>();
    for (let n = 0; n < 60; n += 1) {
      const tenantId = `tenant-${n}`;
      const event = await signed('GET', `/tenants/${tenantId}/items/i-1`);
      const result = await routeRequest(event, deps(invoker));
      const expected = cellOfBucket(map, tenantId);
      expect(calls.at(-1)).toEqual({ cellId: expected, event: { ...event, headers: withoutToken(event.headers) } });
      expect(result.headers?.['x-cell-id']).toBe(expected);
      reached.add(expected);
    }
    expect(reached).toEqual(new Set(cells));
  });

  it('routes every path of a tenant, including the bare list path, to one cell', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    for (const path of ['/tenants/t-9/items', '/tenants/t-9/items/a', '/tenants/t-9/orders/o-1']) {
      await routeRequest(await signed('GET', path), deps(invoker));
    }
    expect(new Set(calls.map((call) => call.cellId))).toEqual(new Set([cellOfBucket(map, 't-9')]));
  });

  it('sends a pinned tenant to its override, whatever its bucket', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const byMap = cellOfBucket(map, 'big-tenant');
    const pinnedTo = cells.find((cellId) => cellId !== byMap)!;
    const pinned = { ...snapshot, overrides: { 'big-tenant': pinnedTo } };
    const result = await routeRequest(await signed('GET', '/tenants/big-tenant/items'), deps(invoker, pinned));
    expect(calls.map((call) => call.cellId)).toEqual([pinnedTo]);
    expect(result.headers?.['x-cell-id']).toBe(pinnedTo);
  });

  it('answers 503 with Retry-After, at once, for a cell that is inactive or not registered', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const tenantCell = cellOfBucket(map, 't-1');
    const inactive = { ...snapshot, cells: new Map([...snapshot.cells, [tenantCell, target(tenantCell, 'inactive')]]) };
    const gone = { ...snapshot, cells: new Map([...snapshot.cells].filter(([cellId]) => cellId !== tenantCell)) };
    for (const routing of [inactive, gone]) {
      const result = await routeRequest(await signed('GET', '/tenants/t-1/items'), deps(invoker, routing));
      expect(result.statusCode).toBe(503);
      expect(result.headers?.['retry-after']).toMatch(/^\d+$/);
      expect(result.headers?.['x-cell-id']).toBe(tenantCell);
      expect(JSON.parse(result.body ?? '').error.code).toBe('cell_unavailable');
    }
    expect(calls).toHaveLength(0);
  });

  it('keeps serving the tenants of a draining cell', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const tenantCell = cellOfBucket(map, 't-1');
    const draining = { ...snapshot, cells: new Map([...snapshot.cells, [tenantCell, target(tenantCell, 'draining')]]) };
    expect((await routeRequest(await signed('GET', '/tenants/t-1/items'), deps(invoker, draining))).statusCode).toBe(200);
    expect(calls.map((call) => call.cellId)).toEqual([tenantCell]);
  });

  it('answers /health itself, with no token, with the cells and the routing version, without invoking any', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const result = await routeRequest(albEvent('GET', '/health'), deps(invoker));
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body ?? '')).toEqual({
      status: 'ok',
      cells: cells.map((cellId) => ({ cellId, status: 'active' })),
      routing: { version: 7, source: 'store' },
    });
    expect((await routeRequest(albEvent('POST', '/health'), deps(invoker))).statusCode).toBe(405);
    expect(calls).toHaveLength(0);
  });

  it('answers OPTIONS itself, with no token, naming what the route table says the path answers', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const preflight = async (path: string) => (await routeRequest(albEvent('OPTIONS', path), deps(invoker))).headers ?? {};
    const item = await preflight('/tenants/t/items/i');
    expect(item).toMatchObject({
      allow: 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS',
      'access-control-allow-methods': 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS',
    });
    // A browser may place an order cross-origin.
    expect((await preflight('/tenants/t/orders'))['access-control-allow-methods']).toBe('POST, OPTIONS');
    for (const route of ROUTES) {
      const path = route.path.replace(/:\w+/g, 'x');
      expect((await preflight(path))['access-control-allow-methods'], path).toBe(allowedMethods(route));
    }
    expect(calls).toHaveLength(0);
  });

  it.each([
    ['an unknown route', 'GET', '/tenants/t/things', 404, 'not_found'],
    ['a method the route does not list', 'POST', '/tenants/t/items/i', 405, 'method_not_allowed'],
    ['a path outside /tenants', 'GET', '/nothing', 404, 'not_found'],
    ['a bad tenant id', 'GET', '/tenants/bad%20id/items', 400, 'validation_failed'],
  ])('answers %s itself, before any token and without invoking a cell', async (_what, method, path, status, code) => {
    const { invoker, calls } = recordingInvoker(ok);
    const result = await routeRequest(albEvent(method, path), deps(invoker));
    expect([result.statusCode, JSON.parse(result.body ?? '').error.code]).toEqual([status, code]);
    if (status === 405) expect(result.headers?.allow).toBe('GET, HEAD, PUT, PATCH, DELETE, OPTIONS');
    expect(calls).toHaveLength(0);
  });

  it('makes every header a string and folds multi-value headers, so the ALB never answers 502', async () => {
    const { invoker } = recordingInvoker(() => ({
      statusCode: 405,
      headers: { 'content-length': 12 as unknown as string, 'x-flag': true as unknown as string },
      multiValueHeaders: { allow: ['GET', 'PUT'] },
      body: 'not allowed!',
    }));
    const result = await routeRequest(await signed('PUT', '/tenants/t/items/i'), deps(invoker));
    expect(result.headers).toMatchObject({ 'content-length': '12', 'x-flag': 'true', allow: 'GET, PUT' });
    expect(result.multiValueHeaders).toBeUndefined();
    expect(Object.values(result.headers ?? {}).every((value) => typeof value === 'string')).toBe(true);
  });

  it('answers 503 with Retry-After for a throttled cell and 502 for a broken one', async () => {
    const busy = recordingInvoker(() => {
      throw new CellUnavailableError('cell-1', true, 'throttled');
    });
    const throttled = await routeRequest(await signed('GET', '/tenants/t/items'), deps(busy.invoker));
    expect(throttled.statusCode).toBe(503);
    expect(throttled.headers?.['retry-after']).toBe('1');
    expect(throttled.headers?.['x-cell-id']).toBe(cellOfBucket(map, 't'));

    const broken = recordingInvoker(() => {
      throw new CellUnavailableError('cell-1', false, 'crashed');
    });
    const failed = await routeRequest(await signed('GET', '/tenants/t/items'), deps(broken.invoker));
    expect(failed.statusCode).toBe(502);
    expect(JSON.parse(failed.body ?? '').error.code).toBe('cell_error');
  });
});

describe('routeRequest: a cell that refuses a tenant as misdirected', () => {
  const misdirected = (): ALBResult => ({
    statusCode: 421,
    headers: { 'content-type': 'application/json' },
    body: '{"error":{"code":"misdirected"}}',
  });
  const tenant = 'moved-tenant';
  const stale = snapshot;
  const owner = cellOfBucket(map, tenant);
  const other = cells.find((cellId) => cellId !== owner)!;
  // The map after the tenant was pinned to another cell: the one a stale router does not have yet.
  const moved: RoutingSnapshot = { ...snapshot, version: 8, overrides: { [tenant]: other } };

  it('re-reads the map and sends the request once more, to the cell that serves the tenant now', async () => {
    const { invoker, calls } = recordingInvoker((cellId) => (cellId === owner ? misdirected() : ok()));
    const result = await routeRequest(await signed('PUT', `/tenants/${tenant}/items/a`), deps(invoker, stale, moved));
    expect(result.statusCode).toBe(200);
    expect(result.headers?.['x-cell-id']).toBe(other);
    expect(calls.map((call) => call.cellId)).toEqual([owner, other]);
  });

  it('answers 503 with Retry-After when the cell it retries refuses too (the tenant is between cells), and tries no third time', async () => {
    const { invoker, calls } = recordingInvoker(() => misdirected());
    const result = await routeRequest(await signed('GET', `/tenants/${tenant}/items/a`), deps(invoker, stale, moved));
    expect(result.statusCode).toBe(503);
    expect(result.headers?.['retry-after']).toBe('1');
    expect(JSON.parse(result.body ?? '{}').error.code).toBe('tenant_moving');
    expect(calls).toHaveLength(2);
  });

  it('waits for the map version the refusing cell already holds (its x-cell-epoch), re-reading until it comes', async () => {
    const refusing = (): ALBResult => ({ ...misdirected(), headers: { ...misdirected().headers, 'x-cell-epoch': '9' } });
    const { invoker, calls } = recordingInvoker((cellId) => (cellId === owner ? refusing() : ok()));
    // The cell's record is written before the map: the first re-read still finds the old map, the next the new one.
    const reads = [stale, { ...moved, version: 9 }];
    let freshReads = 0;
    const d = deps(invoker, stale);
    const result = await routeRequest(await signed('GET', `/tenants/${tenant}/items/a`), {
      ...d,
      routing: { current: async () => stale, fresh: async () => reads[Math.min(freshReads++, reads.length - 1)]! },
    });
    expect(result.statusCode).toBe(200);
    expect(calls.map((call) => call.cellId)).toEqual([owner, other]);
    expect(freshReads).toBe(2);
  });

  it('re-reads nothing for an answer that is not misdirected', async () => {
    let fresh = 0;
    const { invoker } = recordingInvoker(() => ok());
    const d = deps(invoker);
    const result = await routeRequest(await signed('GET', `/tenants/${tenant}/items/a`), {
      ...d,
      routing: {
        current: async () => snapshot,
        fresh: async () => {
          fresh++;
          return snapshot;
        },
      },
    });
    expect(result.statusCode).toBe(200);
    expect(fresh).toBe(0);
  });
});

describe('routeRequest: authentication', () => {
  const path = '/tenants/acme/items/widget';
  const claims = { clientId: 'client-acme', scope: scopeOf('items.read', 'items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: 600 };

  /** Sends the request and checks that it was refused with `status` before any cell saw it. */
  async function refused(event: ALBEvent, status: 401 | 403) {
    const { invoker, calls } = recordingInvoker(ok);
    const result = await routeRequest(event, deps(invoker));
    expect(result.statusCode).toBe(status);
    expect(result.headers?.['www-authenticate']).toMatch(/^Bearer realm="item-master"/);
    expect(result.headers?.['x-cell-id']).toBeUndefined();
    expect(calls).toHaveLength(0);
    return { ...result, error: JSON.parse(result.body ?? '').error as { code: string; message: string } };
  }
  const withToken = (token: string, method = 'PUT') => albEvent(method, path, { headers: { authorization: `Bearer ${token}` } });

  it.each([
    ['a forged signature', () => issuer.forge(claims)],
    ['an expired token', () => issuer.sign({ ...claims, expiresInSeconds: -1 })],
    ['a token of another issuer', () => issuer.sign({ ...claims, issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Elsewhere' })],
    ['a token naming no client', () => issuer.sign({ ...claims, clientId: undefined })],
    ['an ID token instead of an access token', () => issuer.sign({ ...claims, tokenUse: 'id' })],
  ])('refuses %s with 401', async (_case, token) => {
    const result = await refused(withToken(await token()), 401);
    expect(result.headers?.['www-authenticate']).toContain('error="invalid_token"');
    expect(result.error.code).toBe('unauthorized');
  });

  it('refuses a missing token, and a token in the wrong header or the query string, with 401', async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme' });
    await refused(albEvent('GET', path), 401);
    await refused(albEvent('GET', path, { headers: { 'x-api-key': access_token } }), 401);
    await refused(albEvent('GET', path, { headers: { 'x-authorization': `Bearer ${access_token}` } }), 401);
    await refused(albEvent('GET', `${path}?access_token=${access_token}`), 401);
  });

  it.each([['Basic YWNtZTpzZWNyZXQ='], ['Bearer'], ['Bearer    '], ['Token abc.def.ghi'], ['Bearer a b'], ['Bearer "quoted"']])(
    'refuses the malformed header %j with 401 invalid_request',
    async (header) => {
      const result = await refused(albEvent('GET', path, { headers: { authorization: header } }), 401);
      expect(result.headers?.['www-authenticate']).toContain('error="invalid_request"');
    },
  );

  it('refuses two Authorization headers at once', async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme' });
    const { headers: _single, ...event } = albEvent('GET', path);
    const twice: ALBEvent = { ...event, multiValueHeaders: { authorization: [`Bearer ${access_token}`, `Bearer ${access_token}`] } };
    await refused(twice, 401);
  });

  it('refuses another tenant’s token and a client bound to no tenant with 403', async () => {
    const { access_token: globex } = await issuer.issue({ tenantId: 'globex' });
    expect((await refused(withToken(globex, 'GET'), 403)).error.message).toBe('the token is for another tenant');
    const unbound = await issuer.sign({ ...claims, claims: {} });
    expect((await refused(withToken(unbound, 'GET'), 403)).error.message).toBe('the token is not bound to a tenant');
  });

  it('refuses a token without the route’s scope with 403, naming the scope', async () => {
    const { access_token: reader } = await issuer.issue({ tenantId: 'acme', scopes: ['items.read'] });
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const result = await refused(withToken(reader, method), 403);
      expect(result.headers?.['www-authenticate']).toContain('scope="item-master/items.write"');
    }
    const { access_token: writer } = await issuer.issue({ tenantId: 'acme', scopes: ['items.write'] });
    await refused(withToken(writer, 'GET'), 403);
    await refused(albEvent('POST', '/tenants/acme/orders', { headers: { authorization: `Bearer ${writer}` } }), 403);
  });

  it('lets a reader read and a writer write, and never hands the cell the token', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const { access_token: reader } = await issuer.issue({ tenantId: 'acme', scopes: ['items.read'] });
    const { access_token: writer } = await issuer.issue({ tenantId: 'acme', scopes: ['items.write'] });
    expect((await routeRequest(withToken(reader, 'GET'), deps(invoker))).statusCode).toBe(200);
    expect((await routeRequest(withToken(writer, 'PUT'), deps(invoker))).statusCode).toBe(200);
    // With the target group's multi-value headers on, the token comes in multiValueHeaders: it stops there too.
    const { headers: _single, ...multiValue } = withToken(writer, 'PUT');
    const multi: ALBEvent = { ...multiValue, multiValueHeaders: { authorization: [`Bearer ${writer}`], 'content-type': ['application/json'] } };
    expect((await routeRequest(multi, deps(invoker))).statusCode).toBe(200);
    expect(calls).toHaveLength(3);
    for (const { event } of calls) {
      expect(event.headers?.authorization).toBeUndefined();
      expect(event.multiValueHeaders?.authorization).toBeUndefined();
      expect(JSON.stringify(event)).not.toContain(reader);
      expect(JSON.stringify(event)).not.toContain(writer);
    }
    expect(calls[2]!.event.multiValueHeaders).toEqual({ 'content-type': ['application/json'] });
  });

  it("needs items.read to read, items.write to change, and orders.write for anything about orders: the route table's scopes", () => {
    expect(requiredScope('GET', '/tenants/t/items')).toBe('items.read');
    expect(requiredScope('HEAD', '/tenants/t/items/i')).toBe('items.read');
    for (const method of ['PUT', 'PATCH', 'DELETE']) expect(requiredScope(method, '/tenants/t/items/i')).toBe('items.write');
    expect(requiredScope('POST', '/tenants/t/orders')).toBe('orders.write');
    expect(requiredScope('GET', '/tenants/t/orders/o-1')).toBe('orders.write');
    // Nothing the table does not list has a scope, so nothing unlisted is let through.
    expect(requiredScope('POST', '/tenants/t/items/i')).toBeUndefined();
    expect(requiredScope('GET', '/tenants/t/things')).toBeUndefined();
    for (const route of ROUTES) for (const scope of Object.values(route.methods)) expect(SCOPES).toContain(scope);
  });
});

describe('LambdaCellInvoker', () => {
  const cell = target('cell-1');
  const event = albEvent('GET', '/tenants/t/items');
  const TRACE = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
  const stubs: Array<{ close: () => Promise<void> }> = [];
  afterAll(() => Promise.all(stubs.map((stub) => stub.close())));

  /** An invoker whose Lambda API is a loopback stub answering as told; short timeouts for the hung case. */
  async function invokerAnswering(answer: (request: StubRequest) => StubAnswer) {
    const stub = await startStubApi(answer);
    stubs.push(stub);
    const lambda = new AwsApi('lambda', { ...CELL_INVOKE, requestMs: 300 }, awsEnv('lambda', stub.url));
    return { invoker: new LambdaCellInvoker(lambda, () => TRACE), requests: stub.requests };
  }
  const json = (status: number, body: unknown, headers: Record<string, string> = {}): StubAnswer => ({
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

  it("sends the ALB event to Invoke, signed, with the trace header, and returns the cell's response", async () => {
    const { invoker, requests } = await invokerAnswering(() => json(200, ok()));
    const result = await invoker.invoke(cell, event);
    expect(result.statusCode).toBe(200);
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request!.method).toBe('POST');
    expect(request!.path).toBe(`/2015-03-31/functions/${encodeURIComponent(cell.functionName)}/invocations`);
    expect(JSON.parse(request!.body)).toEqual(event);
    expect(request!.headers['x-amz-invocation-type']).toBe('RequestResponse');
    expect(request!.headers['x-amzn-trace-id']).toBe(TRACE);
    // SigV4 with the environment's credentials and session token, scoped to Lambda in the region.
    expect(request!.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/us-east-1\/lambda\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(request!.headers['x-amz-security-token']).toBe('session-token');
    expect(String(request!.headers.authorization)).not.toMatch(/x-amzn-trace-id/);
  });

  it.each<[string, StubAnswer]>([
    ['a function error', json(200, { errorType: 'Error', errorMessage: 'boom' }, { 'x-amz-function-error': 'Unhandled' })],
    ['a timed-out function', json(200, { errorType: 'Sandbox.Timedout', errorMessage: 'timed out' }, { 'x-amz-function-error': 'Unhandled' })],
    ['a malformed response', json(200, { body: 'no status' })],
    ['a payload that is not JSON', { status: 200, body: '<html>' }],
    ['a missing function', json(404, { Type: 'User', message: 'Function not found' }, { 'x-amzn-errortype': 'ResourceNotFoundException' })],
    ['a refused invocation', json(403, { message: 'not authorized' }, { 'x-amzn-errortype': 'AccessDeniedException' })],
    ['a Lambda service error', json(500, { Type: 'Service', message: 'internal' }, { 'x-amzn-errortype': 'ServiceException' })],
    ['a payload over the limit', json(413, { Type: 'User', message: 'too large' }, { 'x-amzn-errortype': 'RequestTooLargeException' })],
    ['a connection reset', 'reset'],
    ['a Lambda API that never answers', 'hang'],
  ])('turns %s into a non-retryable CellUnavailableError, in one attempt', async (_case, answer) => {
    const { invoker, requests } = await invokerAnswering(() => answer);
    await expect(invoker.invoke(cell, event)).rejects.toMatchObject({ name: 'CellUnavailableError', cellId: 'cell-1', retryable: false });
    expect(requests).toHaveLength(1);
  });

  it('marks throttling (429) as retryable, without retrying itself', async () => {
    const { invoker, requests } = await invokerAnswering(() =>
      json(
        429,
        { Type: 'User', message: 'Rate exceeded', Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' },
        { 'x-amzn-errortype': 'TooManyRequestsException' },
      ),
    );
    await expect(invoker.invoke(cell, event)).rejects.toMatchObject({ retryable: true, message: expect.stringMatching(/TooManyRequestsException/) });
    expect(requests).toHaveLength(1);
  });

  it('fails as a cell error when nothing listens', async () => {
    const lambda = new AwsApi('lambda', CELL_INVOKE, awsEnv('lambda', 'http://127.0.0.1:9'));
    await expect(new LambdaCellInvoker(lambda, () => undefined).invoke(cell, event)).rejects.toMatchObject({ retryable: false });
  });
});

describe('AwsApi', () => {
  const stubs: Array<{ close: () => Promise<void> }> = [];
  afterAll(() => Promise.all(stubs.map((stub) => stub.close())));
  async function apiAnswering(answers: StubAnswer[], maxAttempts = 3) {
    const stub = await startStubApi(() => answers.shift() ?? { status: 200, body: '{}' });
    stubs.push(stub);
    return { api: new AwsApi('dynamodb', { connectMs: 500, requestMs: 300, maxAttempts }, awsEnv('dynamodb', stub.url)), requests: stub.requests };
  }
  const dynamoError = (status: number, type: string): StubAnswer => ({
    status,
    headers: { 'content-type': 'application/x-amz-json-1.0' },
    body: JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: `${type} happened` }),
  });
  const post = { path: '/', headers: { 'x-amz-target': 'DynamoDB_20120810.Query' }, body: '{}' };

  it.each<[string, StubAnswer]>([
    ['a throttled request', dynamoError(400, 'ThrottlingException')],
    ['exceeded throughput', dynamoError(400, 'ProvisionedThroughputExceededException')],
    ['a service error', dynamoError(500, 'InternalServerError')],
    ['no answer', 'hang'],
  ])('tries again after %s, up to its attempts', async (_case, failure) => {
    const { api, requests } = await apiAnswering([failure, { status: 200, body: '{"Count":0}' }]);
    expect((await api.post(post)).body).toBe('{"Count":0}');
    expect(requests).toHaveLength(2);
    const { api: once, requests: onceRequests } = await apiAnswering([failure, failure], 2);
    await expect(once.post(post)).rejects.toBeInstanceOf(AwsApiError);
    expect(onceRequests).toHaveLength(2);
  });

  it('gives up at once on a request the service refuses, naming its error', async () => {
    const { api, requests } = await apiAnswering([dynamoError(400, 'ResourceNotFoundException')]);
    await expect(api.post(post)).rejects.toMatchObject({
      status: 400,
      code: 'ResourceNotFoundException',
      retryable: false,
      message: expect.stringMatching(/ResourceNotFoundException happened/),
    });
    expect(requests).toHaveLength(1);
  });

  it('refuses to start without a region, and fails a call without credentials', async () => {
    expect(() => new AwsApi('lambda', CELL_INVOKE, {})).toThrow(/AWS_REGION/);
    const api = new AwsApi('lambda', CELL_INVOKE, { AWS_REGION: 'eu-west-1' });
    expect(api.endpoint.href).toBe('https://lambda.eu-west-1.amazonaws.com/');
    await expect(api.post(post)).rejects.toMatchObject({ code: 'CredentialsMissing' });
    expect(new AwsApi('lambda', CELL_INVOKE, { AWS_REGION: 'cn-north-1' }).endpoint.host).toBe('lambda.cn-north-1.amazonaws.com.cn');
    expect(new AwsApi('lambda', CELL_INVOKE, { AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:4000' }).endpoint.host).toBe(
      '127.0.0.1:4000',
    );
  });
});

describe('loadRouterConfig', () => {
  const env = {
    CONTROL_PLANE_TABLE: 'control',
    SHIPPED_ROUTING: '{}',
    USER_POOL_ID: 'eu-west-1_AbC123',
    AUTH_RESOURCE_SERVER: 'item-master',
    FLEET_TABLE: 'fleet',
    TENANT_RATE: '50',
    TENANT_BURST: '100',
  };

  it('reads the tables, the refresh interval (10 s unless set), the shipped routing, the user pool and the default quota', () => {
    expect(loadRouterConfig(env)).toEqual({
      controlPlaneTable: 'control',
      refreshMs: 10_000,
      shippedRouting: '{}',
      auth: { userPoolId: 'eu-west-1_AbC123', resourceServer: 'item-master', cachedTokens: 10_000 },
      fleetTable: 'fleet',
      defaultQuota: { rate: 50, burst: 100 },
    });
    expect(loadRouterConfig({ ...env, AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: 'http://127.0.0.1:4000' }).auth.endpoint).toBe(
      'http://127.0.0.1:4000',
    );
    expect(loadRouterConfig({ ...env, ROUTING_REFRESH_SECONDS: '2.5' }).refreshMs).toBe(2_500);
    expect(loadRouterConfig({ ...env, TOKEN_CACHE_SIZE: '0' }).auth.cachedTokens).toBe(0);
  });

  it.each([
    [{ ...env, CONTROL_PLANE_TABLE: undefined }, /CONTROL_PLANE_TABLE/],
    [{ ...env, SHIPPED_ROUTING: undefined }, /SHIPPED_ROUTING/],
    [{ ...env, USER_POOL_ID: 'pool-1' }, /USER_POOL_ID/],
    [{ ...env, AUTH_RESOURCE_SERVER: undefined }, /AUTH_RESOURCE_SERVER/],
    [{ ...env, AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: 'not a url' }, /AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER/],
    [{ ...env, ROUTING_REFRESH_SECONDS: '0' }, /ROUTING_REFRESH_SECONDS/],
    [{ ...env, ROUTING_REFRESH_SECONDS: 'soon' }, /ROUTING_REFRESH_SECONDS/],
    [{ ...env, TOKEN_CACHE_SIZE: '-1' }, /TOKEN_CACHE_SIZE: Too small/],
    [{ ...env, TOKEN_CACHE_SIZE: 'many' }, /TOKEN_CACHE_SIZE/],
    [{ ...env, FLEET_TABLE: undefined }, /FLEET_TABLE/],
    [{ ...env, TENANT_RATE: '0' }, /TENANT_RATE/],
    [{ ...env, TENANT_BURST: 'lots' }, /TENANT_BURST/],
  ])('refuses %o', (value, message) => {
    expect(() => loadRouterConfig(value)).toThrow(message);
  });
});

describe("the router's own answers, to the byte", () => {
  const answer = async (method: string, path: string) => routeRequest(albEvent(method, path), deps(recordingInvoker(ok).invoker));
  const body = (result: ALBResult) => JSON.parse(result.body ?? '') as { error: { code: string; message: string; details?: unknown } };

  it('answers a preflight with every CORS header and no body', async () => {
    const result = await answer('OPTIONS', '/tenants/acme/items');
    expect(result).toMatchObject({
      statusCode: 204,
      headers: {
        'access-control-allow-origin': '*',
        'access-control-allow-headers': 'authorization, content-type, if-match, idempotency-key',
        'access-control-max-age': '600',
      },
      body: '',
    });
  });

  it('answers /health to GET and HEAD only, naming the method it refuses and those it allows', async () => {
    expect((await answer('HEAD', '/health')).statusCode).toBe(200);
    const refused = await answer('POST', '/health');
    expect([refused.statusCode, refused.headers?.allow, body(refused).error]).toEqual([
      405,
      'GET, HEAD, OPTIONS',
      { code: 'method_not_allowed', message: 'POST is not allowed on /health' },
    ]);
    expect(refused.headers?.['content-type']).toBe('application/json');
    expect(refused.isBase64Encoded).toBe(false);
  });

  it('names the method and path it has no route for, and says what a tenant id must be', async () => {
    expect(body(await answer('GET', '/nowhere')).error).toEqual({ code: 'not_found', message: 'no route for GET /nowhere' });
    expect(body(await answer('DELETE', '/tenants/acme/nowhere')).error).toEqual({
      code: 'not_found',
      message: 'no route for DELETE /tenants/acme/nowhere',
    });
    expect(body(await answer('PATCH', '/tenants/acme/items')).error).toEqual({ code: 'method_not_allowed', message: 'PATCH is not allowed here' });
    const invalid = await answer('GET', '/tenants/bad%20id/items');
    expect([invalid.statusCode, body(invalid).error]).toEqual([
      400,
      {
        code: 'validation_failed',
        message: 'invalid tenant id',
        details: [{ path: 'tenantId', message: 'must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_" or "-"' }],
      },
    ]);
  });

  it('counts CellErrors 1 for a 5xx of the cell and 0 for anything else, under the cell that answered', async () => {
    for (const [status, errors] of [
      [500, 1],
      [503, 1],
      [499, 0],
      [200, 0],
    ] as const) {
      const routed = deps(recordingInvoker(() => ({ statusCode: status, body: '{}' })).invoker);
      const event = await signed('GET', '/tenants/acme/items');
      const result = await routeRequest(event, routed);
      const emf = routed.observability.metrics.serializeMetrics() as unknown as Record<string, unknown> & {
        _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][] }> };
      };
      expect({ status, CellErrors: emf.CellErrors, cellId: emf.cellId }).toEqual({
        status,
        CellErrors: errors,
        cellId: result.headers?.['x-cell-id'],
      });
      expect(emf._aws.CloudWatchMetrics[0]!.Dimensions.flat()).toContain('cellId');
    }
  });
});

describe('routeRequest: what it logs and measures', () => {
  /** Deps whose logger's calls are recorded: the message and the fields of each line, by level. */
  function observed(invoker: CellInvoker, routing: RoutingSnapshot = snapshot, fresh: RoutingSnapshot = routing) {
    const routed = deps(invoker, routing, fresh);
    const { logger } = routed.observability;
    const lines: Array<[string, string, unknown]> = [];
    const keys: Array<Record<string, unknown>> = [];
    for (const level of ['info', 'warn', 'error'] as const) {
      vi.spyOn(logger, level).mockImplementation(((message: string, fields: unknown) => void lines.push([level, message, fields])) as never);
    }
    vi.spyOn(logger, 'appendKeys').mockImplementation((added) => void keys.push(added));
    return { routed, lines, keys };
  }
  const errorOf = (result: ALBResult) => (JSON.parse(result.body ?? '') as { error: { code: string; message: string } }).error;
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('logs a refusal with its reason and the tenant asked for, never the token', async () => {
    const { routed, lines, keys } = observed(recordingInvoker(ok).invoker);
    const { access_token } = await issuer.issue({ tenantId: 'globex' });
    await routeRequest(albEvent('GET', '/tenants/acme/items', { headers: { authorization: `Bearer ${access_token}` } }), routed);
    expect(lines).toEqual([['warn', 'request refused', { status: 403, reason: 'the token is for another tenant', requestedTenantId: 'acme' }]]);
    expect(keys).toEqual([]);
    expect(JSON.stringify(lines)).not.toContain(access_token);
  });

  it('tags what follows an accepted request with its client and tenant, then the cell that answered, and measures its latency', async () => {
    const { routed, lines, keys } = observed(recordingInvoker(ok).invoker);
    const before = performance.now();
    const result = await routeRequest(await signed('GET', '/tenants/acme/items'), routed);
    const took = performance.now() - before;
    expect(lines).toEqual([]);
    expect(keys).toEqual([{ clientId: expect.any(String), tenantId: 'acme' }, { cellId: result.headers?.['x-cell-id'] }]);
    const { Latency } = routed.observability.metrics.serializeMetrics() as unknown as { Latency: number };
    expect(Latency).toBeGreaterThanOrEqual(0);
    expect(Latency).toBeLessThanOrEqual(took);
  });

  it('logs a misdirected answer with the cell that refused, and words the answer for a tenant between cells', async () => {
    const tenant = 'moved-tenant';
    const owner = cellOfBucket(map, tenant);
    const moved: RoutingSnapshot = { ...snapshot, version: 8, overrides: { [tenant]: cells.find((cellId) => cellId !== owner)! } };
    const misdirected: ALBResult = { statusCode: 421, headers: {}, body: '{}' };
    const { routed, lines } = observed(recordingInvoker(() => misdirected).invoker, snapshot, moved);
    const result = await routeRequest(await signed('GET', `/tenants/${tenant}/items`), routed);
    expect(lines).toEqual([['info', 'cell refused the tenant as misdirected: re-reading the map', { refusedBy: owner }]]);
    expect(errorOf(result)).toEqual({ code: 'tenant_moving', message: 'the tenant is moving between cells, retry shortly' });
  });

  it('logs and words a cell that is not serving, by its status, and one not registered', async () => {
    const tenant = 'acme';
    const cellId = cellOfBucket(map, tenant);
    for (const [cellsNow, cellStatus] of [
      [new Map([...snapshot.cells, [cellId, target(cellId, 'inactive')]]), 'inactive'],
      [new Map([...snapshot.cells].filter(([id]) => id !== cellId)), 'unregistered'],
    ] as const) {
      const { routed, lines } = observed(recordingInvoker(ok).invoker, { ...snapshot, cells: cellsNow });
      const result = await routeRequest(await signed('GET', `/tenants/${tenant}/items`), routed);
      expect(lines).toEqual([['warn', 'tenant routed to a cell that is not serving', { routingVersion: 7, reason: 'map', cellStatus, cellId }]]);
      expect(errorOf(result)).toEqual({ code: 'cell_unavailable', message: `cell ${cellId} is not serving, retry later` });
    }
  });

  it('refuses a tenant over its quota with 429 and the draft RateLimit fields before any cell, and counts it; other tenants go on', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    let now = 1_000_000;
    const routing: RoutingSnapshot = { ...snapshot, quotas: new Map([['busy', { rate: 2, burst: 3 }]]) };
    const routed = {
      ...deps(invoker, routing),
      quotas: { defaultQuota: { rate: 1_000, burst: 1_000 }, buckets: new TenantQuotas({ now: () => now }) },
    };
    const statuses: number[] = [];
    let refused: ALBResult | undefined;
    for (let n = 0; n < 5; n += 1) {
      const result = await routeRequest(await signed('GET', '/tenants/busy/items'), routed);
      statuses.push(result.statusCode);
      if (result.statusCode === 429) refused ??= result;
      else expect(result.headers?.['ratelimit-policy']).toBe('"tenant";q=3;w=2');
    }
    // Its burst of 3 goes through; then 429 until the bucket refills.
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(calls.filter((call) => call.event.path.startsWith('/tenants/busy/'))).toHaveLength(3);
    expect(refused?.headers).toMatchObject({ 'retry-after': '1', 'ratelimit-policy': '"tenant";q=3;w=2', ratelimit: '"tenant";r=0;t=1' });
    expect(errorOf(refused!)).toEqual({
      code: 'quota_exceeded',
      message: 'tenant busy is over its quota of 2 requests a second (bursts of 3): retry after 1 s',
    });
    // Other tenants have buckets of their own, at the default.
    expect((await routeRequest(await signed('GET', '/tenants/quiet/items'), routed)).statusCode).toBe(200);
    // Half a second refills one request's worth (2 a second).
    now += 500;
    expect((await routeRequest(await signed('GET', '/tenants/busy/items'), routed)).statusCode).toBe(200);
    expect((await routeRequest(await signed('GET', '/tenants/busy/items'), routed)).statusCode).toBe(429);
  });

  it('counts refusals in one metric with no tenant dimension, and names the tenant in the log line a Contributor Insights rule reads', async () => {
    const { routed, lines } = observed(recordingInvoker(ok).invoker);
    const tight = { ...routed, quotas: { defaultQuota: { rate: 1, burst: 1 }, buckets: new TenantQuotas({ now: () => 0 }) } };
    const metrics = vi.spyOn(tight.observability.metrics, 'addMetric');
    const dimensions = vi.spyOn(tight.observability.metrics, 'addDimension');
    await routeRequest(await signed('GET', '/tenants/acme/items'), tight);
    expect((await routeRequest(await signed('GET', '/tenants/acme/items'), tight)).statusCode).toBe(429);
    expect(metrics).toHaveBeenCalledWith('QuotaRefusals', 'Count', 1);
    expect(dimensions.mock.calls.filter(([name]) => name === 'tenantId')).toEqual([]);
    expect(lines.at(-1)).toEqual(['info', 'over quota', { refusal: 'quota', quotaRate: 1, quotaBurst: 1 }]);
  });

  it("sheds a throttled cell's requests for a moment without invoking it, and leaves the other cells alone", async () => {
    let now = 0;
    const busyCell = cellOfBucket(map, 't');
    const tenantElsewhere = Array.from({ length: 50 }, (_, n) => `other-${n}`).find((tenantId) => cellOfBucket(map, tenantId) !== busyCell)!;
    const { invoker, calls } = recordingInvoker((cellId) => {
      if (cellId === busyCell) throw new CellUnavailableError(cellId, true, 'throttled');
      return ok();
    });
    const routed = { ...deps(invoker), circuits: new CellCircuits(500, () => now) };
    const first = await routeRequest(await signed('GET', '/tenants/t/items'), routed);
    expect([first.statusCode, errorOf(first).code, first.headers?.['retry-after']]).toEqual([503, 'cell_busy', '1']);
    const shed = await routeRequest(await signed('GET', '/tenants/t/items'), routed);
    expect([shed.statusCode, errorOf(shed).code]).toEqual([503, 'cell_busy']);
    expect(calls.filter((call) => call.cellId === busyCell)).toHaveLength(1);
    expect((await routeRequest(await signed('GET', `/tenants/${tenantElsewhere}/items`), routed)).statusCode).toBe(200);
    // Once the moment is over, the cell is tried again.
    now += 500;
    await routeRequest(await signed('GET', '/tenants/t/items'), routed);
    expect(calls.filter((call) => call.cellId === busyCell)).toHaveLength(2);
  });

  it('logs a cell that did not answer with the error, and words a busy cell and a broken one', async () => {
    const cellId = cellOfBucket(map, 'acme');
    for (const [retryable, status, code, message, line] of [
      [
        true,
        503,
        'cell_busy',
        `cell ${cellId} is at its concurrency limit, retry shortly`,
        ['warn', 'cell throttled: refusing its requests for a moment', { cellId }],
      ],
      [
        false,
        502,
        'cell_error',
        `cell ${cellId} failed to answer`,
        ['error', 'cell did not answer', { error: expect.any(CellUnavailableError), cellId }],
      ],
    ] as const) {
      const error = new CellUnavailableError(cellId, retryable, 'down');
      const { routed, lines } = observed(recordingInvoker(() => Promise.reject(error)).invoker);
      const result = await routeRequest(await signed('GET', '/tenants/acme/items'), routed);
      expect(lines).toEqual([line]);
      expect([result.statusCode, errorOf(result)]).toEqual([status, { code, message }]);
    }
  });

  it('takes one Authorization header given as a multi-value header, and refuses none given as a missing token', async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme' });
    const { headers: _single, ...event } = albEvent('GET', '/tenants/acme/items');
    const once: ALBEvent = { ...event, multiValueHeaders: { authorization: [`Bearer ${access_token}`] } };
    expect((await routeRequest(once, deps(recordingInvoker(ok).invoker))).statusCode).toBe(200);
    const none: ALBEvent = { ...event, multiValueHeaders: { authorization: [] } };
    const refused = await routeRequest(none, deps(recordingInvoker(ok).invoker));
    expect([refused.statusCode, errorOf(refused).message]).toEqual([401, 'a bearer token is required']);
    const twice: ALBEvent = { ...event, multiValueHeaders: { authorization: [`Bearer ${access_token}`, `Bearer ${access_token}`] } };
    const doubled = await routeRequest(twice, deps(recordingInvoker(ok).invoker));
    expect([doubled.statusCode, doubled.headers?.['www-authenticate']]).toEqual([401, expect.stringContaining('error="invalid_request"')]);
  });
});
