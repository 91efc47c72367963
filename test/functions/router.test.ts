import { InvokeCommand, LambdaClient, TooManyRequestsException } from '@aws-sdk/client-lambda';
import { createObservability } from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { loadRouterConfig } from '../../functions/router/config.ts';
import { LambdaCellInvoker } from '../../functions/router/lambda-invoker.ts';
import { CellUnavailableError, routeRequest, type CellInvoker, type RouterDeps } from '../../functions/router/router.ts';
import { cellFor, evenSplit } from '../../functions/router/routing.ts';
import { albEvent } from '../support/alb.ts';

const cells = ['cell-1', 'cell-2', 'cell-3'];
const map = evenSplit(cells);

/** A cell invoker that records which cell got which request. */
function recordingInvoker(answer: (cellId: string, event: ALBEvent) => ALBResult | Promise<ALBResult>) {
  const calls: Array<{ cellId: string; event: ALBEvent }> = [];
  const invoker: CellInvoker = {
    invoke: async (cellId, event) => {
      calls.push({ cellId, event });
      return answer(cellId, event);
    },
  };
  return { invoker, calls };
}

function deps(invoker: CellInvoker): RouterDeps {
  // As on Lambda, where the middleware publishes and clears metrics after each invocation.
  const observability = createObservability(undefined);
  observability.metrics.clearMetrics();
  return { cells, map, invoker, observability };
}

const ok = (): ALBResult => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{}' });

describe('routeRequest', () => {
  it("sends each tenant's request, untouched, to the cell its bucket maps to, and says which", async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const reached = new Set<string>();
    for (let n = 0; n < 60; n += 1) {
      const tenantId = `tenant-${n}`;
      const event = albEvent('GET', `/tenants/${tenantId}/items/i-1`);
      const result = await routeRequest(event, deps(invoker));
      const expected = cellFor(map, tenantId);
      expect(calls.at(-1)).toEqual({ cellId: expected, event });
      expect(result.headers?.['x-cell-id']).toBe(expected);
      reached.add(expected);
    }
    expect(reached).toEqual(new Set(cells));
  });

  it('routes every path of a tenant, including the bare list path, to one cell', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    for (const path of ['/tenants/t-9/items', '/tenants/t-9/items/a', '/tenants/t-9']) {
      await routeRequest(albEvent('GET', path), deps(invoker));
    }
    expect(new Set(calls.map((call) => call.cellId))).toEqual(new Set([cellFor(map, 't-9')]));
  });

  it('answers /health itself with the cells, without invoking any', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const result = await routeRequest(albEvent('GET', '/health'), deps(invoker));
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body ?? '')).toEqual({ status: 'ok', cells });
    expect((await routeRequest(albEvent('POST', '/health'), deps(invoker))).statusCode).toBe(405);
    expect(calls).toHaveLength(0);
  });

  it('answers OPTIONS itself', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const result = await routeRequest(albEvent('OPTIONS', '/tenants/t/items/i'), deps(invoker));
    expect(result.statusCode).toBe(204);
    expect(result.headers?.allow).toContain('PATCH');
    expect(calls).toHaveLength(0);
  });

  it('answers 404 for paths outside /tenants and 400 for a bad tenant id, without invoking a cell', async () => {
    const { invoker, calls } = recordingInvoker(ok);
    const notFound = await routeRequest(albEvent('GET', '/nothing'), deps(invoker));
    expect(notFound.statusCode).toBe(404);
    expect(JSON.parse(notFound.body ?? '').error.code).toBe('not_found');
    const bad = await routeRequest(albEvent('GET', '/tenants/bad%20id/items'), deps(invoker));
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body ?? '').error.code).toBe('validation_failed');
    expect(calls).toHaveLength(0);
  });

  it('makes every header a string and folds multi-value headers, so the ALB never answers 502', async () => {
    const { invoker } = recordingInvoker(() => ({
      statusCode: 405,
      headers: { 'content-length': 12 as unknown as string, 'x-flag': true as unknown as string },
      multiValueHeaders: { allow: ['GET', 'PUT'] },
      body: 'not allowed!',
    }));
    const result = await routeRequest(albEvent('POST', '/tenants/t/items/i'), deps(invoker));
    expect(result.headers).toMatchObject({ 'content-length': '12', 'x-flag': 'true', allow: 'GET, PUT' });
    expect(result.multiValueHeaders).toBeUndefined();
    expect(Object.values(result.headers ?? {}).every((value) => typeof value === 'string')).toBe(true);
  });

  it('answers 503 with Retry-After for a throttled cell and 502 for a broken one', async () => {
    const busy = recordingInvoker(() => {
      throw new CellUnavailableError('cell-1', true, 'throttled');
    });
    const throttled = await routeRequest(albEvent('GET', '/tenants/t/items'), deps(busy.invoker));
    expect(throttled.statusCode).toBe(503);
    expect(throttled.headers?.['retry-after']).toBe('1');
    expect(throttled.headers?.['x-cell-id']).toBe(cellFor(map, 't'));

    const broken = recordingInvoker(() => {
      throw new CellUnavailableError('cell-1', false, 'crashed');
    });
    const failed = await routeRequest(albEvent('GET', '/tenants/t/items'), deps(broken.invoker));
    expect(failed.statusCode).toBe(502);
    expect(JSON.parse(failed.body ?? '').error.code).toBe('cell_error');
  });
});

describe('LambdaCellInvoker', () => {
  const functions = { 'cell-1': 'item-master-dev-cell-1-api' };
  const event = albEvent('GET', '/tenants/t/items');
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

  function clientAnswering(answer: () => unknown) {
    const client = new LambdaClient({ region: 'us-east-1' });
    const send = vi.spyOn(client, 'send').mockImplementation(async () => answer());
    return { client, send };
  }

  it('invokes the cell function by name with the ALB event and returns its response', async () => {
    const { client, send } = clientAnswering(() => ({ StatusCode: 200, Payload: encode(ok()) }));
    const result = await new LambdaCellInvoker(client, functions).invoke('cell-1', event);
    expect(result.statusCode).toBe(200);
    const command = send.mock.calls[0]![0] as InvokeCommand;
    expect(command.input.FunctionName).toBe('item-master-dev-cell-1-api');
    expect(JSON.parse(command.input.Payload as string)).toEqual(event);
  });

  it.each([
    ['a function error', () => ({ StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorMessage: 'boom' }) })],
    ['a malformed response', () => ({ StatusCode: 200, Payload: encode({ body: 'no status' }) })],
    ['a payload that is not JSON', () => ({ StatusCode: 200, Payload: new TextEncoder().encode('<html>') })],
  ])('turns %s into a non-retryable CellUnavailableError', async (_case, answer) => {
    const { client } = clientAnswering(answer);
    await expect(new LambdaCellInvoker(client, functions).invoke('cell-1', event)).rejects.toMatchObject({
      name: 'CellUnavailableError',
      retryable: false,
    });
  });

  it('marks throttling as retryable and an unknown cell as not', async () => {
    const { client } = clientAnswering(() => {
      throw new TooManyRequestsException({ message: 'Rate exceeded', $metadata: {} });
    });
    await expect(new LambdaCellInvoker(client, functions).invoke('cell-1', event)).rejects.toMatchObject({ retryable: true });
    await expect(new LambdaCellInvoker(client, functions).invoke('cell-9', event)).rejects.toMatchObject({ retryable: false });
  });
});

describe('loadRouterConfig', () => {
  it('reads the cells in order from CELL_FUNCTIONS', () => {
    const config = loadRouterConfig({ CELL_FUNCTIONS: JSON.stringify({ 'cell-2': 'f2', 'cell-1': 'f1' }) });
    expect(config.cellIds).toEqual(['cell-2', 'cell-1']);
  });

  it.each([undefined, '', 'nope', '{}', '[]'])('refuses CELL_FUNCTIONS=%s', (value) => {
    expect(() => loadRouterConfig({ CELL_FUNCTIONS: value })).toThrow();
  });
});
