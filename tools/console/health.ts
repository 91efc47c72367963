/**
 * How healthy each cell is and how much traffic it serves: from the local
 * runtime's counts (`GET /_local/traffic`), or on AWS from each cell's
 * composite alarm and the router's per-cell metrics.
 */
import { type CloudWatchClient, DescribeAlarmsCommand, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { cellHealthAlarmName, metricsNamespace, type AppIdentity } from '../../layers/shared/src/contracts/names.ts';
import type { CellHealth, TrafficView } from './api.ts';

export interface HealthSource {
  /** Each cell's health and the recent traffic per cell. */
  read(cellIds: readonly string[]): Promise<{ health: Record<string, CellHealth>; traffic: TrafficView }>;
}

/** The share of 5xx answers over a minute that makes a cell unhealthy locally: the cell API's error alarm's default. */
const LOCAL_ERROR_PERCENT = 1;

/** The local runtime's counts, read from its front door. */
export class LocalHealth implements HealthSource {
  constructor(private readonly runtimeUrl: string) {}

  async read(cellIds: readonly string[]): Promise<{ health: Record<string, CellHealth>; traffic: TrafficView }> {
    const response = await fetch(`${this.runtimeUrl}/_local/traffic`, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) throw new Error(`the local runtime answered ${response.status} for its traffic`);
    const counts = (await response.json()) as {
      slotSeconds: number;
      newestSlotAt: number;
      cells: Record<string, { requests: number[]; errors: number[] }>;
    };
    const lastMinute = Math.max(1, Math.round(60 / counts.slotSeconds));
    const health: Record<string, CellHealth> = {};
    for (const cellId of cellIds) {
      const series = counts.cells[cellId] ?? { requests: [], errors: [] };
      const requests = sum(series.requests.slice(-lastMinute));
      const errors = sum(series.errors.slice(-lastMinute));
      const seconds = lastMinute * counts.slotSeconds;
      const sick = errors > 0 && (100 * errors) / requests >= LOCAL_ERROR_PERCENT;
      health[cellId] = {
        state: sick ? 'alarm' : 'ok',
        detail: `${(requests / seconds).toFixed(1)} requests/s, ${errors} 5xx in the last minute${sick ? ` (${LOCAL_ERROR_PERCENT}% or more failed)` : ''}`,
        requestsPerSecond: requests / seconds,
        errorsPerSecond: errors / seconds,
      };
    }
    const slots = Object.values(counts.cells)[0]?.requests.length ?? Math.round(300 / counts.slotSeconds);
    const traffic = Object.fromEntries(
      cellIds.map((cellId) => [cellId, (counts.cells[cellId]?.requests ?? Array<number>(slots).fill(0)).map((n) => n / counts.slotSeconds)]),
    );
    return { health, traffic: { slotSeconds: counts.slotSeconds, newestSlotAt: counts.newestSlotAt, cells: traffic } };
  }
}

/** The traffic chart's slots on AWS: one per minute over the last 15. */
const AWS_SLOT_SECONDS = 60;
const AWS_SLOTS = 15;

/**
 * On AWS: each cell's composite alarm (`<app>-<stage>-<cell>-healthy`) is its
 * health; the router's `Requests` and `CellErrors` with the cell's `cellId`
 * are its traffic, one GetMetricData call for all cells.
 */
export class AwsHealth implements HealthSource {
  constructor(
    private readonly cloudWatch: Pick<CloudWatchClient, 'send'>,
    private readonly app: AppIdentity,
    private readonly now: () => number = Date.now,
  ) {}

  async read(cellIds: readonly string[]): Promise<{ health: Record<string, CellHealth>; traffic: TrafficView }> {
    const names = new Map(cellIds.map((cellId) => [cellHealthAlarmName(this.app, cellId), cellId]));
    const end = Math.floor(this.now() / 60_000) * 60_000;
    const start = end - AWS_SLOTS * AWS_SLOT_SECONDS * 1000;
    const namespace = metricsNamespace(this.app);
    const queries: MetricDataQuery[] = cellIds.flatMap((cellId, i) =>
      (['Requests', 'CellErrors'] as const).map((metricName) => ({
        Id: `${metricName === 'Requests' ? 'r' : 'e'}${i}`,
        MetricStat: {
          Metric: {
            Namespace: namespace,
            MetricName: metricName,
            Dimensions: [
              { Name: 'service', Value: 'router' },
              { Name: 'cellId', Value: cellId },
            ],
          },
          Period: AWS_SLOT_SECONDS,
          Stat: 'Sum',
        },
      })),
    );
    const [alarms, data] = await Promise.all([
      this.cloudWatch.send(new DescribeAlarmsCommand({ AlarmNames: [...names.keys()], AlarmTypes: ['CompositeAlarm'] })),
      queries.length
        ? this.cloudWatch.send(
            new GetMetricDataCommand({
              MetricDataQueries: queries,
              StartTime: new Date(start),
              EndTime: new Date(end),
              ScanBy: 'TimestampAscending',
            }),
          )
        : Promise.resolve({ MetricDataResults: [] }),
    ]);
    const states = new Map((alarms.CompositeAlarms ?? []).map((alarm) => [alarm.AlarmName, alarm]));
    const series = (id: string): number[] => {
      const result = data.MetricDataResults?.find((r) => r.Id === id);
      const byTime = new Map((result?.Timestamps ?? []).map((t, k) => [new Date(t).getTime(), result?.Values?.[k] ?? 0]));
      return Array.from({ length: AWS_SLOTS }, (_, k) => byTime.get(start + k * AWS_SLOT_SECONDS * 1000) ?? 0);
    };
    const health: Record<string, CellHealth> = {};
    const traffic: Record<string, number[]> = {};
    cellIds.forEach((cellId, i) => {
      const alarmName = cellHealthAlarmName(this.app, cellId);
      const alarm = states.get(alarmName);
      const requests = series(`r${i}`);
      const errors = series(`e${i}`);
      traffic[cellId] = requests.map((n) => n / AWS_SLOT_SECONDS);
      health[cellId] = {
        state: !alarm ? 'unknown' : alarm.StateValue === 'ALARM' ? 'alarm' : alarm.StateValue === 'OK' ? 'ok' : 'unknown',
        detail: alarm ? `${alarmName}: ${alarm.StateValue}${alarm.StateReason ? ` (${alarm.StateReason})` : ''}` : `no alarm ${alarmName}`,
        requestsPerSecond: (requests.at(-1) ?? 0) / AWS_SLOT_SECONDS,
        errorsPerSecond: (errors.at(-1) ?? 0) / AWS_SLOT_SECONDS,
      };
    });
    return { health, traffic: { slotSeconds: AWS_SLOT_SECONDS, newestSlotAt: end - AWS_SLOT_SECONDS * 1000, cells: traffic } };
  }
}

function sum(values: readonly number[]): number {
  return values.reduce((total, n) => total + n, 0);
}
