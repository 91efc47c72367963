import { Duration } from 'aws-cdk-lib';
import { Metric, type CompositeAlarm, type IAlarm, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DEFAULT_CELL_ALARM_THRESHOLDS, type CellAlarmThresholds } from './alarm-thresholds.ts';
import { healthAlarm, lambdaErrorPercent, thresholdAlarm } from './alarms.ts';

export interface CellAlarmsProps {
  readonly cellId: string;
  /** The composite alarm's name: the deploy and the dashboard find it by this name. */
  readonly healthAlarmName: string;
  readonly api: IFunction;
  readonly orders: IStateMachine;
  /** The function that reads the cell table's stream. */
  readonly publisher: IFunction;
  /** Every dead-letter and failure queue of the cell, by what it holds. */
  readonly failureQueues: Readonly<Record<string, IQueue>>;
  /** Where the router's metrics are: its namespace; its `CellErrors` carry `service` = router and `cellId`. */
  readonly metricsNamespace: string;
  /** @default DEFAULT_CELL_ALARM_THRESHOLDS, field by field */
  readonly thresholds?: CellAlarmThresholds;
}

/**
 * Whether a cell is healthy: one alarm per sign of sickness, and one
 * composite alarm over them all, "cell-N healthy" in ALARM when any of them
 * is. Missing data is not breaching: a cell without traffic is healthy.
 */
export class CellAlarms extends Construct {
  /** Every alarm the composite alarm watches, by name. */
  public readonly alarms: Readonly<Record<string, IAlarm>>;
  public readonly health: CompositeAlarm;

  constructor(scope: Construct, id: string, props: CellAlarmsProps) {
    super(scope, id);
    const t = { ...DEFAULT_CELL_ALARM_THRESHOLDS, ...props.thresholds };
    const five = Duration.minutes(5);
    const alarm = (name: string, description: string, metric: IMetric, threshold: number, evaluationPeriods = 1) =>
      thresholdAlarm(this, name, { metric, threshold, evaluationPeriods, description: `${props.cellId}: ${description}` });
    const errorPercent = lambdaErrorPercent(props.api, 'cell API errors (%)', five);
    const alarms: Record<string, IAlarm> = {
      ApiErrors: alarm('ApiErrors', `over ${t.apiErrorPercent}% of the cell API's invocations failed`, errorPercent, t.apiErrorPercent),
      ApiThrottles: alarm(
        'ApiThrottles',
        'the cell API was throttled',
        props.api.metricThrottles({ period: five, statistic: 'Sum' }),
        t.apiThrottles,
      ),
      ApiLatency: alarm(
        'ApiLatency',
        `the cell API's p99 duration reached ${t.apiP99Ms} ms`,
        props.api.metricDuration({ period: Duration.minutes(1), statistic: 'p99' }),
        t.apiP99Ms,
        3,
      ),
      OrderFailures: alarm(
        'OrderFailures',
        'order executions ended in Fail: orders refused (stock, payment) or broken',
        props.orders.metricFailed({ period: five, statistic: 'Sum' }),
        t.orderFailures,
      ),
      OrderTimeouts: alarm(
        'OrderTimeouts',
        'order executions timed out',
        props.orders.metricTimedOut({ period: five, statistic: 'Sum' }),
        t.orderTimeouts,
      ),
      StreamAge: alarm(
        'StreamAge',
        'the change publisher is behind its stream: live updates are late',
        new Metric({
          namespace: 'AWS/Lambda',
          metricName: 'IteratorAge',
          dimensionsMap: { FunctionName: props.publisher.functionName },
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
        t.iteratorAgeMs,
        3,
      ),
      RouterErrors: alarm(
        'RouterErrors',
        'the router answered 5xx for this cell',
        new Metric({
          namespace: props.metricsNamespace,
          metricName: 'CellErrors',
          dimensionsMap: { service: 'router', cellId: props.cellId },
          period: five,
          statistic: 'Sum',
        }),
        t.router5xx,
      ),
    };
    for (const [what, queue] of Object.entries(props.failureQueues)) {
      const name = `Waiting${what}`;
      alarms[name] = alarm(
        name,
        `messages wait in ${what}`,
        queue.metricApproximateNumberOfMessagesVisible({ period: five, statistic: 'Maximum' }),
        t.failedMessages,
      );
    }
    this.alarms = alarms;
    this.health = healthAlarm(
      this,
      props.healthAlarmName,
      alarms,
      `${props.cellId} is unhealthy when any of its alarms is in ALARM; the wave deploy stops on it`,
    );
  }
}
