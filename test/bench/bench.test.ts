import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ASSUMPTIONS, billedMs, costModel, PRICES, routerMemoryRows } from '../../bench/cost.ts';
import { startRecordingProxy, withInitStubs } from '../../bench/init-stubs.ts';
import { orderCosts, successPath, type Definition } from '../../bench/orders.ts';
import { verdict, type VariantRow } from '../../bench/report.ts';
import { linearFit, median, quantile } from '../../bench/stats.ts';

const saga: Definition = {
  StartAt: 'Reserve',
  States: {
    Reserve: { Type: 'Task', Next: 'Pay' },
    Pay: { Type: 'Task', Next: 'Confirm' },
    Confirm: {
      Type: 'Parallel',
      Next: 'Done',
      Branches: [
        { StartAt: 'Mark', States: { Mark: { Type: 'Task', End: true } } },
        { StartAt: 'Notify', States: { Notify: { Type: 'Task', Next: 'Log' }, Log: { Type: 'Pass', End: true } } },
      ],
    },
    Done: { Type: 'Succeed' },
  },
};

describe('the order bench reads the cost from the definition', () => {
  it('enters every state of the success path, a Parallel state and each state of its branches', () => {
    expect(successPath(saga)).toEqual(['Reserve', 'Pay', 'Confirm', 'Mark', 'Notify', 'Log', 'Done']);
  });

  it('prices the path at Standard rates and divides the transition quota by it', () => {
    const costs = orderCosts(saga);
    expect(costs.transitionsPerOrder).toBe(7);
    expect(costs.usdPerMillionOrders).toBeCloseTo(175, 6);
    expect(costs.quotaOrdersPerSecond).toBeCloseTo(1500 / 7, 6);
    expect(costs.quotaBurstOrders).toBe(714);
  });

  it('refuses a path it cannot walk without data', () => {
    const choice: Definition = { StartAt: 'Which', States: { Which: { Type: 'Choice' } } };
    expect(() => successPath(choice)).toThrow('Choice state Which');
    const failing: Definition = { StartAt: 'A', States: { A: { Type: 'Task', Next: 'Nope' } } };
    expect(() => successPath(failing)).toThrow('does not define');
    const dangling: Definition = { StartAt: 'A', States: { A: { Type: 'Task' } } };
    expect(() => successPath(dangling)).toThrow('neither Next nor End');
  });
});

describe('the bundling verdict', () => {
  const row = (awsSdk: 'runtime' | 'bundled', sharedCode: 'layer' | 'bundled', initMs: number): VariantRow => ({
    service: 'fn',
    awsSdk,
    sharedCode,
    initMs,
    addedMs: 0,
    ratio: 1,
    kb: 1,
    codeKb: 1,
    files: 2,
    layerKb: 0,
  });
  const rows = [row('runtime', 'layer', 110), row('runtime', 'bundled', 109), row('bundled', 'layer', 95), row('bundled', 'bundled', 95.5)];

  it('names the faster side and whether the default agrees', () => {
    expect(verdict(rows, 'awsSdk', 'runtime')).toMatchObject({ winner: 'bundled', agrees: false });
    expect(verdict(rows, 'awsSdk', 'bundled')).toMatchObject({ winner: 'bundled', agrees: true });
    expect(verdict(rows, 'awsSdk', 'bundled').marginMs).toBeCloseTo(14.25, 6);
  });

  it('calls a difference within the noise a draw, which any default agrees with', () => {
    expect(verdict(rows, 'sharedCode', 'layer')).toMatchObject({ winner: 'neither', agrees: true });
  });
});

describe('bench statistics', () => {
  it('interpolates quantiles between ranks', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.99)).toBeCloseTo(4.96, 6);
    expect(() => median([])).toThrow('no samples');
  });

  it('fits a line through the synthesis times', () => {
    const fit = linearFit([
      [1, 3.0],
      [4, 3.3],
      [16, 4.5],
      [32, 6.1],
    ]);
    expect(fit.slope).toBeCloseTo(0.1, 6);
    expect(fit.intercept).toBeCloseTo(2.9, 6);
  });
});

describe('the cost model', () => {
  const inputs = {
    cpuMs: { put: { router: 0.5, 'cell-api': 2, publisher: 0.1 }, get: { router: 0.5, 'cell-api': 1.5 } },
    memoryMb: { router: 512, 'cell-api': 512, publisher: 512, payment: 256 },
    transitionsPerOrder: 8,
  };

  it("bills CPU at the function's share of a vCPU, plus its waits, in whole ms", () => {
    expect(billedMs(1, 1769, 0)).toBe(1);
    expect(billedMs(1, 3538, 0)).toBe(1);
    expect(billedMs(1, 128, 0)).toBe(Math.ceil(1769 / 128));
    expect(billedMs(0.2, 1769, 5)).toBe(6);
  });

  it("bills the router for the cell's time too, since it waits for the answer", () => {
    const [get] = costModel(inputs);
    const cellMs = billedMs(1.5, 512, ASSUMPTIONS.dynamoCallMs);
    const routerMs = billedMs(0.5, 512, cellMs + ASSUMPTIONS.invokeOverheadMs);
    expect(get!.routerUsd).toBeCloseTo((routerMs / 1000) * 0.5 * PRICES.lambdaArmUsdPerGbSecond * 1e6 + PRICES.lambdaUsdPerMillionRequests, 9);
    expect(get!.totalUsd).toBeCloseTo(get!.routerUsd + get!.lambdaUsd + get!.albUsd + get!.dynamoUsd + get!.otherUsd, 9);
  });

  it('prices an order with its transitions, and more than an item PUT', () => {
    const [, put, order] = costModel(inputs);
    expect(order!.otherUsd).toBeGreaterThanOrEqual(8 * PRICES.stepFunctionsUsdPerTransition * 1e6);
    expect(order!.totalUsd).toBeGreaterThan(put!.totalUsd);
  });

  it("gives the router's share at each memory size", () => {
    const rows = routerMemoryRows(inputs, [128, 1769]);
    expect(rows.map((row) => row.memoryMb)).toEqual([128, 1769]);
    for (const row of rows) expect(row.share).toBeGreaterThan(0);
    expect(rows[0]!.routerUsd).not.toBe(rows[1]!.routerUsd);
  });
});

describe("the cold start's init stubs", () => {
  it('forward a request once, replay it after, and key it by its body, not its signature', async () => {
    let upstreamCalls = 0;
    const upstream = createServer((req, res) => {
      upstreamCalls += 1;
      req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(`{"call":${upstreamCalls}}`));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const proxy = await startRecordingProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    try {
      const post = (body: string, signature: string) =>
        fetch(proxy.url, { method: 'POST', headers: { 'x-amz-target': 'DynamoDB_20120810.Query', authorization: signature }, body }).then((r) =>
          r.text(),
        );
      expect(await post('{"a":1}', 'sig-1')).toBe('{"call":1}');
      expect(await post('{"a":1}', 'sig-2')).toBe('{"call":1}');
      expect(await post('{"a":2}', 'sig-3')).toBe('{"call":2}');
      expect(proxy.counts()).toEqual({ replayed: 1, forwarded: 2 });
      expect(withInitStubs({ AWS_ENDPOINT_URL_DYNAMODB: 'x', OTHER: 'y' }, { dynamodb: proxy })).toEqual({
        AWS_ENDPOINT_URL_DYNAMODB: proxy.url,
        OTHER: 'y',
      });
    } finally {
      await proxy.close();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });
});
