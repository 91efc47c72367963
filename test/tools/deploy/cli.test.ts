import type { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { describe, expect, it } from 'vitest';
import { CloudWatchAlarms } from '../../../tools/deploy/aws.ts';
import { deployCommand, EXIT, type DeployDependencies } from '../../../tools/deploy/cli.ts';
import type { AlarmReader, StackDeployer } from '../../../tools/deploy/waves.ts';

const context = { appName: 'shop', stage: 'dev', cells: ['c-1', 'c-2', 'c-3', 'c-4'], region: 'eu-west-1' };

function harness(options: { sick?: string[]; failing?: string; signal?: AbortSignal; onDeploy?: (stack: string) => void } = {}) {
  let time = 0;
  const deployed: string[][] = [];
  const lines: string[] = [];
  const errors: string[] = [];
  let connected = 0;
  // A step's stacks start together: each one joins the step that started at the same time, and the step takes a minute.
  let stepStart = -1;
  const deployer: StackDeployer = {
    deploy: async (stack) => {
      if (stepStart === time) deployed.at(-1)!.push(stack);
      else deployed.push([stack]);
      stepStart = time;
      options.onDeploy?.(stack);
      await Promise.resolve();
      time = stepStart + 60_000;
      if (options.failing === stack) throw new Error(`${stack}: UPDATE_ROLLBACK_COMPLETE`);
      return [];
    },
  };
  const alarms: AlarmReader = {
    inAlarm: async (names) => names.filter((name) => options.sick?.includes(name)).map((name) => ({ name, reason: 'Threshold Crossed' })),
  };
  const deps: DeployDependencies = {
    context,
    connect: async () => {
      connected += 1;
      return { deployer, alarms };
    },
    clock: { now: () => time, sleep: async (ms) => void (time += ms) },
    print: (line) => lines.push(...line.split('\n')),
    error: (line) => errors.push(...line.split('\n')),
    signal: options.signal,
  };
  return { deps, deployed, lines, errors, connected: () => connected };
}

describe('npm run deploy', () => {
  it('--dry-run prints the plan and deploys nothing, without reaching AWS', async () => {
    const { deps, deployed, lines, connected } = harness();
    expect(await deployCommand(['--dry-run', '-c', 'canaryCell=c-2', '-c', 'bakeMinutes=30'], deps)).toBe(EXIT.ok);
    expect(connected()).toBe(0);
    expect(deployed).toEqual([]);
    expect(lines).toEqual([
      'shop dev in eu-west-1: 4 steps',
      '  1. control plane: shop-dev-control-plane',
      '  2. canary: shop-dev-c-2, then bake 30 min',
      '  3. wave 1: shop-dev-c-1, then bake 30 min',
      '  4. wave 2: shop-dev-c-3, shop-dev-c-4, then bake 30 min',
      'dry run: nothing deployed',
    ]);
  });

  it('deploys the waves in order and exits 0', async () => {
    const { deps, deployed, lines } = harness();
    expect(await deployCommand([], deps)).toBe(EXIT.ok);
    expect(deployed).toEqual([['shop-dev-control-plane'], ['shop-dev-c-1'], ['shop-dev-c-2'], ['shop-dev-c-3', 'shop-dev-c-4']]);
    expect(lines.at(-1)).toBe('done after 49 min');
  });

  it('--cells deploys only that subset; --all-at-once deploys everything in one step without a bake', async () => {
    const subset = harness();
    expect(await deployCommand(['--cells', 'c-4,c-2'], subset.deps)).toBe(EXIT.ok);
    expect(subset.deployed).toEqual([['shop-dev-c-2'], ['shop-dev-c-4']]);
    const sandbox = harness();
    expect(await deployCommand(['--all-at-once'], sandbox.deps)).toBe(EXIT.ok);
    expect(sandbox.deployed).toEqual([['shop-dev-control-plane', 'shop-dev-c-1', 'shop-dev-c-2', 'shop-dev-c-3', 'shop-dev-c-4']]);
    expect(sandbox.lines.at(-1)).toBe('done after 60 s');
  });

  it('exits 1 when an alarm stops the rollout, naming the alarm and where it stopped', async () => {
    const { deps, deployed, lines } = harness({ sick: ['shop-dev-c-2-healthy'] });
    expect(await deployCommand([], deps)).toBe(EXIT.stopped);
    expect(deployed.flat()).not.toContain('shop-dev-c-3');
    expect(lines.join('\n')).toContain('shop-dev-c-2-healthy (Threshold Crossed)');
    expect(lines).toContain('stopped at wave 1; deployed: control plane, canary, wave 1; not started: wave 2');
  });

  it('exits 1 when a deploy fails, and 130 when interrupted, saying where it stopped', async () => {
    const failed = harness({ failing: 'shop-dev-c-1' });
    expect(await deployCommand([], failed.deps)).toBe(EXIT.stopped);
    expect(failed.lines).toContain('stopped at canary; deployed: control plane; not started: wave 1, wave 2');

    const interrupt = new AbortController();
    const interrupted = harness({ signal: interrupt.signal, onDeploy: (stack) => stack === 'shop-dev-c-2' && interrupt.abort() });
    expect(await deployCommand([], interrupted.deps)).toBe(EXIT.interrupted);
    expect(interrupted.lines).toContain('stopped at wave 1; deployed: control plane, canary; not started: wave 2');
  });

  const hint = ' (npm run deploy -- --help lists the options)';
  it.each([
    [['--cells', 'c-9'], 'npm run deploy: --cells: unknown cell: c-9 (cells: c-1, c-2, c-3, c-4)'],
    [['--cells', ' '], `npm run deploy: --cells needs at least one cell id${hint}`],
    [['--bogus'], `npm run deploy: unknown option "--bogus"${hint}`],
    [['now'], `npm run deploy: unexpected argument "now"${hint}`],
    [['-c', 'bakeMinutes'], `npm run deploy: -c takes key=value, not "bakeMinutes"${hint}`],
    [['-c', 'deploymentWaves=0'], 'npm run deploy: invalid configuration: deploymentWaves[0]: must be at least 1'],
    // Empty text, spaces, hex, exponents, fractions and signs are no whole number: never 0, 16, 1000 or 2.
    [['-c', 'bakeMinutes='], 'npm run deploy: invalid configuration: bakeMinutes: must be a whole number of minutes, not ""'],
    [['-c', 'bakeMinutes= '], 'npm run deploy: invalid configuration: bakeMinutes: must be a whole number of minutes, not " "'],
    [['-c', 'bakeMinutes=0x10'], 'npm run deploy: invalid configuration: bakeMinutes: must be a whole number of minutes, not "0x10"'],
    [['-c', 'bakeMinutes=1e1'], 'npm run deploy: invalid configuration: bakeMinutes: must be a whole number of minutes, not "1e1"'],
    [['-c', 'bakeMinutes=2.5'], 'npm run deploy: invalid configuration: bakeMinutes: must be a whole number of minutes, not "2.5"'],
    [['-c', 'bakeMinutes=-5'], 'npm run deploy: invalid configuration: bakeMinutes: must be a whole number of minutes, not "-5"'],
    [['-c', 'deploymentWaves=1,,2'], 'npm run deploy: invalid configuration: deploymentWaves[1]: must be a whole number, not ""'],
    [['-c', 'deploymentWaves=0x2'], 'npm run deploy: invalid configuration: deploymentWaves[0]: must be a whole number, not "0x2"'],
    [
      ['-c', 'routingRefreshSeconds=1e1'],
      'npm run deploy: invalid configuration: routingRefreshSeconds: must be a whole number of seconds, not "1e1"',
    ],
    [['-c', 'alarmThresholds={"apiP99Ms":"0x10"}'], 'npm run deploy: invalid configuration: alarmThresholds.apiP99Ms: must be a number, not "0x10"'],
    // A typo of a key is refused, with the key meant.
    [['-c', 'bakeMinute=60'], 'npm run deploy: invalid configuration: "bakeMinute": not a configuration key (did you mean bakeMinutes?)'],
    [['-c', 'canarycell=c-2'], 'npm run deploy: invalid configuration: "canarycell": not a configuration key (did you mean canaryCell?)'],
  ])('refuses %j in one line on standard error with exit code 2, deploying nothing', async (argv, message) => {
    const { deps, deployed, lines, errors, connected } = harness();
    expect(await deployCommand(argv, deps)).toBe(EXIT.usage);
    expect(errors).toEqual([message]);
    expect(lines).toEqual([]);
    expect([deployed, connected()]).toEqual([[], 0]);
  });

  it("takes bakeMinutes=0 for no bake, and CDK's own context keys as they are", async () => {
    const { deps, lines } = harness();
    expect(await deployCommand(['--dry-run', '-c', 'bakeMinutes=0', '-c', '@aws-cdk/core:newStyleStackSynthesis=true'], deps)).toBe(EXIT.ok);
    expect(lines).toContain('  2. canary: shop-dev-c-1');
  });
});

describe('CloudWatchAlarms', () => {
  it('reads composite and metric alarms 100 names at a time; ALARM and missing alarms are sick, OK and INSUFFICIENT_DATA are not', async () => {
    const requests: Array<DescribeAlarmsCommand['input']> = [];
    const states: Record<string, string> = { 'cell-1-healthy': 'ALARM', 'cell-2-healthy': 'OK', 'cp-healthy': 'INSUFFICIENT_DATA', 'x-99': 'ALARM' };
    const client = {
      send: async (command: DescribeAlarmsCommand) => {
        requests.push(command.input);
        const known = (command.input.AlarmNames ?? []).filter((name) => states[name]);
        const alarm = (name: string) => ({ AlarmName: name, StateValue: states[name], StateReason: `${name} is ${states[name]}` });
        return {
          CompositeAlarms: known.filter((name) => name.endsWith('-healthy')).map(alarm),
          MetricAlarms: known.filter((name) => !name.endsWith('-healthy')).map(alarm),
        };
      },
    } as unknown as CloudWatchClient;
    const names = ['cell-1-healthy', 'cell-2-healthy', 'cp-healthy', 'gone-healthy', ...Array.from({ length: 100 }, (_, i) => `x-${i}`)];
    expect(await new CloudWatchAlarms(client).inAlarm(names)).toEqual([
      { name: 'cell-1-healthy', reason: 'cell-1-healthy is ALARM' },
      { name: 'gone-healthy', reason: 'no such alarm, so its health cannot be watched' },
      ...Array.from({ length: 99 }, (_, i) => ({ name: `x-${i}`, reason: 'no such alarm, so its health cannot be watched' })),
      { name: 'x-99', reason: 'x-99 is ALARM' },
    ]);
    expect(requests.map((request) => [request.AlarmNames?.length, request.AlarmTypes])).toEqual([
      [100, ['CompositeAlarm', 'MetricAlarm']],
      [4, ['CompositeAlarm', 'MetricAlarm']],
    ]);
  });
});
