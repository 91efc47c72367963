import { type App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CellStack } from './cell-stack.ts';
import { type AppConfig, checkContextKeys, isProduction, parseConfig } from './config.ts';
import { ControlPlaneStack } from './control-plane-stack.ts';
import { metricsNamespace, stackName } from '../layers/shared/src/contracts/names.ts';
import { StagePolicies } from './stage-policies.ts';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';

export interface ItemMasterStacks {
  readonly config: AppConfig;
  readonly controlPlane: ControlPlaneStack;
  readonly cells: readonly CellStack[];
}

/**
 * Reads the configuration from the app's context and adds one control-plane
 * stack and one stack per cell, with cdk-nag's AWS Solutions checks over all.
 */
export function buildApp(app: App): ItemMasterStacks {
  checkContextKeys(Object.keys(app.node.getAllContext() as object));
  const config = parseConfig((key) => app.node.tryGetContext(key));
  // CloudFormation takes no Tags on ALB listeners or dashboards.
  const untaggable = { excludeResourceTypes: ['AWS::ElasticLoadBalancingV2::Listener', 'AWS::CloudWatch::Dashboard'] };
  Tags.of(app).add('app', config.appName, untaggable);
  Tags.of(app).add('stage', config.stage, untaggable);
  const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region: config.region };

  const controlPlane = new ControlPlaneStack(app, 'ControlPlane', {
    env,
    stackName: stackName(config, 'control-plane'),
    description: `${config.appName} control plane and front door (${config.stage})`,
    config,
  });
  const cells = config.cells.map((cellId) => {
    const stack = new CellStack(app, `Cell-${cellId}`, {
      env,
      stackName: stackName(config, cellId),
      description: `${config.appName} ${cellId} (${config.stage})`,
      config,
      cellId,
    });
    Tags.of(stack).add('cell', cellId, untaggable);
    // Deploy order only (no reference): a cell registers in the control-plane table, so it deploys after it.
    stack.addStackDependency(controlPlane, 'registers in the control-plane table');
    return stack;
  });

  StagePolicies.applyTo(app, {
    retainData: isProduction(config),
    logRetention: config.logRetentionDays as RetentionDays,
    metricsNamespace: metricsNamespace(config),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { config, controlPlane, cells };
}
