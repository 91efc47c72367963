import {
  Alarm,
  AlarmRule,
  ComparisonOperator,
  CompositeAlarm,
  MathExpression,
  TreatMissingData,
  type IAlarm,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Duration, Stack } from 'aws-cdk-lib';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

/** Every alarm of the app: at or above its threshold, and healthy without data (no traffic is not sickness). */
export function thresholdAlarm(
  scope: Construct,
  id: string,
  props: { metric: IMetric; threshold: number; description: string; evaluationPeriods?: number },
): Alarm {
  return new Alarm(scope, id, {
    metric: props.metric,
    threshold: props.threshold,
    evaluationPeriods: props.evaluationPeriods ?? 1,
    comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: TreatMissingData.NOT_BREACHING,
    alarmDescription: props.description,
  });
}

/** The share of a function's invocations that failed (unhandled errors and timeouts), in per cent, 0 without invocations. */
export function lambdaErrorPercent(fn: IFunction, label: string, period = Duration.minutes(5)): MathExpression {
  return new MathExpression({
    expression: 'IF(invocations > 0, 100 * errors / invocations, 0)',
    usingMetrics: {
      errors: fn.metricErrors({ period, statistic: 'Sum' }),
      invocations: fn.metricInvocations({ period, statistic: 'Sum' }),
    },
    period,
    label,
  });
}

/**
 * Sends a composite alarm's changes (into ALARM and back to OK) to the app's
 * alarm topic, found by its name: the control plane creates it, and a cell
 * stack reaches it without a reference to that stack.
 */
export function notifyTopic(alarm: CompositeAlarm, topicName: string): void {
  const topic = Topic.fromTopicArn(alarm, 'AlarmTopic', Stack.of(alarm).formatArn({ service: 'sns', resource: topicName }));
  alarm.addAlarmAction(new SnsAction(topic));
  alarm.addOkAction(new SnsAction(topic));
}

/** One composite alarm over `alarms`, in ALARM when any of them is: the one name a deploy or an operator watches. */
export function healthAlarm(scope: Construct, name: string, alarms: Readonly<Record<string, IAlarm>>, description: string): CompositeAlarm {
  return new CompositeAlarm(scope, 'Healthy', {
    compositeAlarmName: name,
    alarmRule: AlarmRule.anyOf(...Object.values(alarms)),
    alarmDescription: description,
  });
}
