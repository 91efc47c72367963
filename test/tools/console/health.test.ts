import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeAlarmsCommand, type GetMetricDataCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { describe, expect, it } from 'vitest';
import { AwsHealth, LocalHealth } from '../../../tools/console/health.ts';

const app = { appName: 'shop', stage: 'prod' };

describe('AwsHealth', () => {
  it("reads each cell's composite alarm and the router's per-cell metrics in two calls, and maps them", async () => {
    const now = Date.UTC(2026, 11, 2, 12, 0, 30);
    const end = Date.UTC(2026, 11, 2, 12, 0, 0);
    const calls: Array<DescribeAlarmsCommand['input'] | GetMetricDataCommand['input']> = [];
    const cloudWatch = {
      send: async (command: DescribeAlarmsCommand | GetMetricDataCommand) => {
        calls.push(command.input);
        if (command instanceof DescribeAlarmsCommand) {
          return {
            CompositeAlarms: [
              { AlarmName: 'shop-prod-a-healthy', StateValue: 'OK' },
              { AlarmName: 'shop-prod-b-healthy', StateValue: 'ALARM', StateReason: 'ApiErrors in ALARM' },
            ],
          };
        }
        const minute = (k: number) => new Date(end - (15 - k) * 60_000);
        return {
          MetricDataResults: [
            { Id: 'r0', Timestamps: [minute(14), minute(0)], Values: [120, 60] },
            { Id: 'e0', Timestamps: [minute(14)], Values: [6] },
            { Id: 'r1', Timestamps: [], Values: [] },
          ],
        };
      },
    } as unknown as Pick<CloudWatchClient, 'send'>;
    const { health, traffic } = await new AwsHealth(cloudWatch, app, () => now).read(['a', 'b', 'c']);
    expect(calls[0]).toEqual({ AlarmNames: ['shop-prod-a-healthy', 'shop-prod-b-healthy', 'shop-prod-c-healthy'], AlarmTypes: ['CompositeAlarm'] });
    const metrics = calls[1] as GetMetricDataCommand['input'];
    expect(metrics.StartTime).toEqual(new Date(end - 15 * 60_000));
    expect(metrics.EndTime).toEqual(new Date(end));
    expect(metrics.MetricDataQueries).toHaveLength(6);
    expect(metrics.MetricDataQueries![0]).toEqual({
      Id: 'r0',
      MetricStat: {
        Metric: {
          Namespace: 'Shop',
          MetricName: 'Requests',
          Dimensions: [
            { Name: 'service', Value: 'router' },
            { Name: 'cellId', Value: 'a' },
          ],
        },
        Period: 60,
        Stat: 'Sum',
      },
    });
    expect(health.a).toEqual({ state: 'ok', detail: 'shop-prod-a-healthy: OK', requestsPerSecond: 2, errorsPerSecond: 0.1 });
    expect(health.b).toMatchObject({ state: 'alarm', detail: 'shop-prod-b-healthy: ALARM (ApiErrors in ALARM)', requestsPerSecond: 0 });
    expect(health.c).toMatchObject({ state: 'unknown', detail: 'no alarm shop-prod-c-healthy' });
    expect(traffic.slotSeconds).toBe(60);
    expect(traffic.cells.a).toHaveLength(15);
    expect(traffic.cells.a![0]).toBe(1);
    expect(traffic.cells.a![14]).toBe(2);
    expect(traffic.cells.b!.every((n) => n === 0)).toBe(true);
  });
});

describe('LocalHealth', () => {
  it("reads the runtime's traffic: rates over the last minute, and a cell with 1% or more 5xx is unhealthy", async () => {
    const zeros = Array<number>(48).fill(0);
    const body = {
      slotSeconds: 5,
      newestSlotAt: 0,
      cells: {
        'cell-1': { requests: [...zeros, ...Array<number>(12).fill(10)], errors: [...zeros, ...Array<number>(12).fill(0)] },
        'cell-2': { requests: [...zeros, ...Array<number>(12).fill(10)], errors: [...zeros, 2, ...Array<number>(11).fill(0)] },
      },
    };
    const server = createServer((req, res) => {
      expect(req.url).toBe('/_local/traffic');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { health, traffic } = await new LocalHealth(`http://127.0.0.1:${(server.address() as AddressInfo).port}`).read([
        'cell-1',
        'cell-2',
        'cell-3',
      ]);
      expect(health['cell-1']).toEqual({ state: 'ok', detail: '2.0 requests/s, 0 5xx in the last minute', requestsPerSecond: 2, errorsPerSecond: 0 });
      expect(health['cell-2']).toMatchObject({ state: 'alarm', detail: '2.0 requests/s, 2 5xx in the last minute (1% or more failed)' });
      expect(health['cell-3']).toMatchObject({ state: 'ok', requestsPerSecond: 0 });
      expect(traffic.cells['cell-1']!.at(-1)).toBe(2);
      expect(traffic.cells['cell-3']).toEqual(Array<number>(60).fill(0));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
