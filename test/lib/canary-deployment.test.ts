import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CanaryDeployment, type TrafficShift } from '../../lib/canary-deployment.ts';
/** Where the apps synthesize: removed after the file. */
const outdir = mkdtempSync(path.join(tmpdir(), 'canary-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('CanaryDeployment', () => {
  const withFunction = () => {
    const stack = new Stack(new App({ outdir: mkdtempSync(path.join(outdir, 'app-')) }), 'S');
    const fn = new LambdaFunction(stack, 'Fn', {
      runtime: Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: Code.fromInline('exports.handler = async () => 1;'),
    });
    const alarm = (id: string) => new Alarm(stack, id, { metric: fn.metricErrors(), threshold: 1, evaluationPeriods: 1 });
    return { stack, fn, alarm };
  };

  it('shifts its alias all at once, or by a canary of its own, predefined where CodeDeploy has one', () => {
    const cases: Array<[TrafficShift, unknown]> = [
      ['all-at-once', 'CodeDeployDefault.LambdaAllAtOnce'],
      [{ canaryPercent: 10, canaryMinutes: 15 }, 'CodeDeployDefault.LambdaCanary10Percent15Minutes'],
      [{ canaryPercent: 5, canaryMinutes: 2 }, { Ref: Match.stringLikeRegexp('TrafficShift') }],
    ];
    for (const [trafficShift, configName] of cases) {
      const { stack, fn, alarm } = withFunction();
      new CanaryDeployment(stack, 'Deploy', { fn, trafficShift }).rollBackOn(alarm('Health'));
      const template = Template.fromStack(stack);
      template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', { DeploymentConfigName: configName });
      template.hasResourceProperties('AWS::Lambda::Alias', { Name: 'live' });
    }
    const { stack, fn, alarm } = withFunction();
    new CanaryDeployment(stack, 'Deploy', { fn, trafficShift: { canaryPercent: 5, canaryMinutes: 2 } }).rollBackOn(alarm('Health'));
    Template.fromStack(stack).hasResourceProperties('AWS::CodeDeploy::DeploymentConfig', {
      TrafficRoutingConfig: { Type: 'TimeBasedCanary', TimeBasedCanary: { CanaryPercentage: 5, CanaryInterval: 2 } },
    });
  });

  it('refuses more than 10 alarms, and a deployment group with none fails synthesis', () => {
    const { stack, fn, alarm } = withFunction();
    const deployment = new CanaryDeployment(stack, 'Deploy', { fn });
    expect(() =>
      deployment.rollBackOn(
        alarm('Health'),
        Array.from({ length: 10 }, (_, i) => alarm(`A${i}`)),
      ),
    ).toThrow(/at most 10 alarms, and 11 were given/);
    const bare = withFunction();
    new CanaryDeployment(bare.stack, 'Deploy', { fn: bare.fn });
    expect(() => Template.fromStack(bare.stack)).toThrow(
      /'deploymentInAlarm' does not have any effect unless you associate at least one CloudWatch alarm/,
    );
  });
});
