import { Duration } from 'aws-cdk-lib';
import {
  AlarmStatusWidget,
  CompositeAlarm,
  Dashboard,
  GraphWidget,
  Metric,
  SingleValueWidget,
  TextWidget,
  type IAlarm,
  type IMetric,
  type IWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import { HttpCodeElb, HttpCodeTarget, type IApplicationLoadBalancer } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { cellApiFunctionName, cellHealthAlarmName, metricsNamespace, type AppIdentity } from '../layers/shared/src/contracts/names.ts';

export interface HealthDashboardProps {
  readonly app: AppIdentity;
  /** A row per cell, in this order. */
  readonly cells: readonly string[];
  readonly router: IFunction;
  readonly loadBalancer: IApplicationLoadBalancer;
  /** The front door's composite alarm. */
  readonly frontDoorHealth: IAlarm;
  /**
   * The web ACL's metric name, for its blocked requests.
   * @default - no WAF widget
   */
  readonly wafMetricName?: string;
  /** The region the web ACL's metrics are in; with `wafMetricName`. */
  readonly region?: string;
  /**
   * The dashboard's name.
   * @default `<appName>-<stage>`
   */
  readonly dashboardName?: string;
}

const FIVE_MINUTES = Duration.minutes(5);
const WIDTH = 24;

/**
 * One CloudWatch dashboard for the app: the front door's row, then a row per
 * cell built from `cells`, so a cell added to the config appears with no
 * other change. Everything a row shows is found by name or by the `cellId`
 * dimension the functions emit, never by a reference to the cell's stack,
 * which deploys on its own.
 */
export class HealthDashboard extends Construct {
  public readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: HealthDashboardProps) {
    super(scope, id);
    const namespace = metricsNamespace(props.app);
    const routerMetric = (metricName: string, cellId: string, statistic = 'Sum') =>
      new Metric({ namespace, metricName, dimensionsMap: { service: 'router', cellId }, period: FIVE_MINUTES, statistic, label: metricName });
    const graph = (title: string, left: IMetric[], width = WIDTH / 4) => new GraphWidget({ title, left, width, height: 6 });

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName ?? `${props.app.appName}-${props.app.stage}`,
      defaultInterval: Duration.hours(3),
    });
    const alb = props.loadBalancer.metrics;
    this.dashboard.addWidgets(new TextWidget({ markdown: '## Front door', width: WIDTH, height: 1 }));
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'front door healthy', alarms: [props.frontDoorHealth], width: WIDTH / 4, height: 6 }),
      graph('ALB requests and 5xx', [
        alb.requestCount({ period: FIVE_MINUTES }),
        alb.httpCodeElb(HttpCodeElb.ELB_5XX_COUNT, { period: FIVE_MINUTES }),
        alb.httpCodeTarget(HttpCodeTarget.TARGET_5XX_COUNT, { period: FIVE_MINUTES }),
      ]),
      graph('ALB target response time p99', [alb.targetResponseTime({ period: FIVE_MINUTES, statistic: 'p99' })]),
      graph('Router errors and throttles', [
        props.router.metricErrors({ period: FIVE_MINUTES }),
        props.router.metricThrottles({ period: FIVE_MINUTES }),
      ]),
      graph('Router duration p99 and routing refresh failures', [
        props.router.metricDuration({ period: FIVE_MINUTES, statistic: 'p99' }),
        new Metric({ namespace, metricName: 'RoutingRefreshFailures', dimensionsMap: { service: 'router' }, period: FIVE_MINUTES, statistic: 'Sum' }),
      ]),
      new SingleValueWidget({
        title: 'Routing map version in force',
        metrics: [
          new Metric({ namespace, metricName: 'RoutingVersion', dimensionsMap: { service: 'router' }, period: FIVE_MINUTES, statistic: 'Maximum' }),
        ],
        width: WIDTH / 4,
        height: 6,
      }),
      ...(props.wafMetricName
        ? [
            graph('WAF blocked requests', [
              new Metric({
                namespace: 'AWS/WAFV2',
                metricName: 'BlockedRequests',
                dimensionsMap: { WebACL: props.wafMetricName, Rule: 'ALL', Region: props.region ?? '' },
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
            ]),
          ]
        : []),
    );

    for (const cellId of props.cells) {
      const api = (metricName: string, statistic: string) =>
        new Metric({
          namespace: 'AWS/Lambda',
          metricName,
          dimensionsMap: { FunctionName: cellApiFunctionName(props.app, cellId) },
          period: FIVE_MINUTES,
          statistic,
        });
      const widgets: IWidget[] = [
        new AlarmStatusWidget({
          title: `${cellId} healthy`,
          alarms: [CompositeAlarm.fromCompositeAlarmName(this, `${cellId}Healthy`, cellHealthAlarmName(props.app, cellId))],
          width: WIDTH / 4,
          height: 6,
        }),
        graph(`${cellId}: requests and 5xx at the router`, [routerMetric('Requests', cellId), routerMetric('CellErrors', cellId)]),
        graph(`${cellId}: latency p99 (router, cell API)`, [routerMetric('Latency', cellId, 'p99'), api('Duration', 'p99')]),
        graph(`${cellId}: cell API errors and throttles`, [
          api('Errors', 'Sum'),
          api('Throttles', 'Sum'),
          new Metric({
            namespace,
            metricName: 'ServerErrors',
            dimensionsMap: { service: 'cell-api', cellId },
            period: FIVE_MINUTES,
            statistic: 'Sum',
            label: '5xx answered',
          }),
        ]),
        graph(
          `${cellId}: orders placed`,
          [
            new Metric({
              namespace,
              metricName: 'OrdersPlaced',
              dimensionsMap: { service: 'cell-api', cellId },
              period: FIVE_MINUTES,
              statistic: 'Sum',
            }),
          ],
          WIDTH / 2,
        ),
        graph(
          `${cellId}: live updates' lag (oldest change of a batch)`,
          [
            new Metric({
              namespace,
              metricName: 'StreamLag',
              dimensionsMap: { service: 'publisher', cellId },
              period: FIVE_MINUTES,
              statistic: 'Maximum',
            }),
          ],
          WIDTH / 2,
        ),
      ];
      this.dashboard.addWidgets(new TextWidget({ markdown: `## ${cellId}`, width: WIDTH, height: 1 }));
      this.dashboard.addWidgets(...widgets);
    }
  }
}
