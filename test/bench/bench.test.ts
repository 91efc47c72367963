import { describe, expect, it } from 'vitest';
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
