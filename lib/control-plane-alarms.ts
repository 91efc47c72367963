import { Duration } from 'aws-cdk-lib';
import { MathExpression, Metric, type CompositeAlarm, type IAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import { HttpCodeElb, type IApplicationLoadBalancer } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { DEFAULT_CONTROL_PLANE_ALARM_THRESHOLDS, type ControlPlaneAlarmThresholds } from './alarm-thresholds.ts';
import { healthAlarm, lambdaErrorPercent, thresholdAlarm } from './alarms.ts';

export interface ControlPlaneAlarmsProps {
  /** The composite alarm's name. */
  readonly healthAlarmName: string;
  readonly router: IFunction;
  readonly loadBalancer: IApplicationLoadBalancer;
  /** The live-updates WebSocket API and its stage. */
  readonly liveApiId: string;
  readonly liveStage: string;
  /** Where the router's `RoutingRefreshFailures` are. */
  readonly metricsNamespace: string;
  /** @default DEFAULT_CONTROL_PLANE_ALARM_THRESHOLDS, field by field */
  readonly thresholds?: ControlPlaneAlarmThresholds;
}

/**
 * The front door's health: the router's errors and duration, its failed
 * reads of the routing data, the ALB's own 5xx and its targets' response
 * time, and the WebSocket API's errors; one composite alarm over them all.
 * Thresholds from the config, each default explained in docs/design/operations.md ("A cell's health").
 */
export class ControlPlaneAlarms extends Construct {
  public readonly alarms: Readonly<Record<string, IAlarm>>;
  public readonly health: CompositeAlarm;

  constructor(scope: Construct, id: string, props: ControlPlaneAlarmsProps) {
    super(scope, id);
    const t = { ...DEFAULT_CONTROL_PLANE_ALARM_THRESHOLDS, ...props.thresholds };
    const five = Duration.minutes(5);
    const minute = Duration.minutes(1);
    const live = (metricName: string) =>
      new Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: props.liveApiId, Stage: props.liveStage },
        period: five,
        statistic: 'Sum',
      });
    this.alarms = {
      RouterErrors: thresholdAlarm(this, 'RouterErrors', {
        metric: lambdaErrorPercent(props.router, 'router errors (%)', five),
        threshold: t.routerErrorPercent,
        description: `over ${t.routerErrorPercent}% of the router's invocations failed`,
      }),
      RouterLatency: thresholdAlarm(this, 'RouterLatency', {
        metric: props.router.metricDuration({ period: minute, statistic: 'p99' }),
        threshold: t.routerP99Ms,
        evaluationPeriods: 3,
        description: `the router's p99 duration (its cell's included) reached ${t.routerP99Ms} ms`,
      }),
      RoutingRefresh: thresholdAlarm(this, 'RoutingRefresh', {
        metric: new Metric({
          namespace: props.metricsNamespace,
          metricName: 'RoutingRefreshFailures',
          dimensionsMap: { service: 'router' },
          period: five,
          statistic: 'Sum',
        }),
        threshold: t.routingRefreshFailures,
        description: 'the router could not read the routing data: it serves its last good copy, and no map change reaches it',
      }),
      Alb5xx: thresholdAlarm(this, 'Alb5xx', {
        metric: props.loadBalancer.metrics.httpCodeElb(HttpCodeElb.ELB_5XX_COUNT, { period: five, statistic: 'Sum' }),
        threshold: t.alb5xx,
        description: 'the ALB itself answered 5xx (the router failed, timed out or was not reachable)',
      }),
      AlbLatency: thresholdAlarm(this, 'AlbLatency', {
        metric: props.loadBalancer.metrics.targetResponseTime({ period: minute, statistic: 'p99' }),
        threshold: t.albP99Seconds,
        evaluationPeriods: 3,
        description: `the router's p99 response time at the ALB reached ${t.albP99Seconds} s`,
      }),
      LiveErrors: thresholdAlarm(this, 'LiveErrors', {
        metric: new MathExpression({
          expression: 'integration + execution',
          usingMetrics: { integration: live('IntegrationError'), execution: live('ExecutionError') },
          period: five,
          label: 'live-updates errors',
        }),
        threshold: t.liveErrors,
        description: "the live-updates API's routes failed",
      }),
    };
    this.health = healthAlarm(this, props.healthAlarmName, this.alarms, 'The front door is unhealthy when any of its alarms is in ALARM');
  }
}
