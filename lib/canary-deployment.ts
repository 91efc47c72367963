import { Duration, Validations } from 'aws-cdk-lib';
import type { IAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import { LambdaDeploymentConfig, LambdaDeploymentGroup, TrafficRouting, type ILambdaDeploymentConfig } from 'aws-cdk-lib/aws-codedeploy';
import { Alias, type Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { SERVING_ALIAS } from '../layers/shared/src/contracts/names.ts';
import { DEFAULT_TRAFFIC_SHIFT, type TrafficShift } from './traffic-shift.ts';

/**
 * How CodeDeploy moves an alias to a new version: a canary share of the
 * traffic for some minutes, then all of it; or all at once, for sandboxes.
 */
export { DEFAULT_TRAFFIC_SHIFT, type TrafficShift };

/** CloudFormation's limit on the alarms of a deployment group. */
export const MAX_DEPLOYMENT_ALARMS = 10;

export interface CanaryDeploymentProps {
  /** The function the alias serves. */
  readonly fn: LambdaFunction;
  /** @default DEFAULT_TRAFFIC_SHIFT */
  readonly trafficShift?: TrafficShift;
  /** @default SERVING_ALIAS */
  readonly aliasName?: string;
}

/**
 * A function served through an alias that CodeDeploy moves to each new
 * version: the canary share first, then all, and back to the old version
 * by itself when a health alarm goes into ALARM or the deployment fails.
 * CloudFormation waits for the shift (the alias's
 * `CodeDeployLambdaAliasUpdate` policy), so a rolled-back shift fails the
 * stack's update and CloudFormation rolls the rest of the stack back too.
 *
 * The alias exists at once (the ALB targets it); the alarms come with
 * `rollBackOn`, since they may watch what targets the alias. Synthesis
 * fails if they never come (CodeDeploy's rollback on alarm needs one).
 */
export class CanaryDeployment extends Construct {
  public readonly alias: Alias;
  public readonly deploymentGroup: LambdaDeploymentGroup;
  private alarmCount = 0;

  constructor(scope: Construct, id: string, props: CanaryDeploymentProps) {
    super(scope, id);
    this.alias = new Alias(this, 'Alias', { aliasName: props.aliasName ?? SERVING_ALIAS, version: props.fn.currentVersion });
    this.deploymentGroup = new LambdaDeploymentGroup(this, 'Deployment', {
      alias: this.alias,
      deploymentConfig: deploymentConfig(this, props.trafficShift ?? DEFAULT_TRAFFIC_SHIFT),
      autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: true },
    });
    Validations.of(this.deploymentGroup.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]',
      reason: "CodeDeploy's own policy for Lambda deployments, kept current by AWS: it moves aliases and invokes only hooks named CodeDeployHook_*",
    });
  }

  /**
   * Rolls back on `health`, the composite alarm that says the cell (or the
   * front door) is sick, and on `members`, the alarms it is made of: named
   * too, so that a rollback does not depend on CodeDeploy reading a
   * composite alarm's state (its alarm configuration is documented for
   * metric alarms).
   */
  rollBackOn(health: IAlarm, members: readonly IAlarm[] = []): void {
    const alarms = [health, ...members];
    if (this.alarmCount + alarms.length > MAX_DEPLOYMENT_ALARMS) {
      throw new Error(
        `${this.node.path}: a deployment group watches at most ${MAX_DEPLOYMENT_ALARMS} alarms, and ${this.alarmCount + alarms.length} were given`,
      );
    }
    for (const alarm of alarms) this.deploymentGroup.addAlarm(alarm);
    this.alarmCount += alarms.length;
  }
}

/** One of CodeDeploy's predefined configurations where there is one, else the app's own. */
function deploymentConfig(scope: Construct, shift: TrafficShift): ILambdaDeploymentConfig {
  if (shift === 'all-at-once') return LambdaDeploymentConfig.ALL_AT_ONCE;
  const predefined: Record<string, ILambdaDeploymentConfig> = {
    '10/5': LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
    '10/10': LambdaDeploymentConfig.CANARY_10PERCENT_10MINUTES,
    '10/15': LambdaDeploymentConfig.CANARY_10PERCENT_15MINUTES,
    '10/30': LambdaDeploymentConfig.CANARY_10PERCENT_30MINUTES,
  };
  return (
    predefined[`${shift.canaryPercent}/${shift.canaryMinutes}`] ??
    new LambdaDeploymentConfig(scope, 'TrafficShift', {
      trafficRouting: TrafficRouting.timeBasedCanary({ percentage: shift.canaryPercent, interval: Duration.minutes(shift.canaryMinutes) }),
    })
  );
}
