/**
 * The wave deploy's ties to AWS: the CDK's programmatic toolkit for the
 * stacks (one synthesis, then one deploy per step) and CloudWatch for the
 * health alarms.
 */
import { type CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import {
  CdkAppMultiContext,
  DiffMethod,
  ExpandStackSelection,
  StackSelectionStrategy,
  Toolkit,
  type CachedCloudAssembly,
  type StackSelector,
} from '@aws-cdk/toolkit-lib';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../../lib/app.ts';
import { fromRoot } from '../../lib/paths.ts';
import type { AlarmReader, Change, StackDeployer } from './waves.ts';

/**
 * Deploys through `@aws-cdk/toolkit-lib`: the app is synthesized once, in
 * process, with cdk.json's context and the command line's, and each stack
 * deploys from that one assembly, without the stacks it depends on (the
 * control plane goes first by the plan's order). Before its deploy, a stack
 * is compared with its deployed template, so that what it changed can be
 * named when a rollout stops.
 */
export class ToolkitDeployer implements StackDeployer {
  private constructor(
    private readonly toolkit: Toolkit,
    private readonly assembly: CachedCloudAssembly,
    /** Stack name → the id the toolkit selects stacks by. */
    private readonly ids: ReadonlyMap<string, string>,
  ) {}

  static async synthesize(commandLineContext: Record<string, unknown>): Promise<ToolkitDeployer> {
    const toolkit = new Toolkit();
    const source = await toolkit.fromAssemblyBuilder(
      async (props) => {
        const app = new App({ outdir: props.outdir, context: props.context });
        buildApp(app);
        return app.synth();
      },
      { contextStore: new CdkAppMultiContext(fromRoot(), commandLineContext), outdir: fromRoot('cdk.out') },
    );
    const assembly = await toolkit.synth(source);
    const ids = new Map(assembly.cloudAssembly.stacksRecursively.map((stack) => [stack.stackName, stack.hierarchicalId]));
    return new ToolkitDeployer(toolkit, assembly, ids);
  }

  async deploy(stackName: string): Promise<readonly Change[]> {
    const id = this.ids.get(stackName);
    if (!id) throw new Error(`the app has no stack named ${stackName}`);
    const stacks: StackSelector = { strategy: StackSelectionStrategy.PATTERN_MUST_MATCH_SINGLE, patterns: [id], expand: ExpandStackSelection.NONE };
    const diffs = await this.toolkit.diff(this.assembly, { stacks, method: DiffMethod.TemplateOnly() });
    const changes: Change[] = [];
    for (const diff of Object.values(diffs)) {
      diff.resources.forEachDifference((logicalId, change) => {
        changes.push({
          logicalId,
          type: change.resourceType ?? 'unknown',
          action: change.isAddition ? 'add' : change.isRemoval ? 'remove' : 'update',
        });
      });
    }
    await this.toolkit.deploy(this.assembly, { stacks });
    return changes;
  }
}

/** Alarm states from CloudWatch, composite and metric alarms alike; an alarm that does not exist cannot be watched, so it counts as sick. */
export class CloudWatchAlarms implements AlarmReader {
  constructor(private readonly client: CloudWatchClient) {}

  async inAlarm(alarmNames: readonly string[]): Promise<Array<{ name: string; reason: string }>> {
    const found = new Map<string, { state?: string; reason?: string }>();
    // DescribeAlarms takes at most 100 names.
    for (let start = 0; start < alarmNames.length; start += 100) {
      const page = await this.client.send(
        new DescribeAlarmsCommand({ AlarmNames: alarmNames.slice(start, start + 100), AlarmTypes: ['CompositeAlarm', 'MetricAlarm'] }),
      );
      for (const alarm of [...(page.CompositeAlarms ?? []), ...(page.MetricAlarms ?? [])]) {
        found.set(alarm.AlarmName!, { state: alarm.StateValue, reason: alarm.StateReason });
      }
    }
    return alarmNames.flatMap((name) => {
      const alarm = found.get(name);
      if (!alarm) return [{ name, reason: 'no such alarm, so its health cannot be watched' }];
      return alarm.state === 'ALARM' ? [{ name, reason: alarm.reason ?? 'in ALARM' }] : [];
    });
  }
}
