import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { describe, expect, it } from 'vitest';
import { CloudWatchAlarms } from '../../deploy/aws.ts';
import { deployCommand, EXIT, type DeployDependencies } from '../../deploy/cli.ts';
import type { AlarmReader, StackDeployer } from '../../deploy/waves.ts';

const context = { appName: 'shop', stage: 'dev', cells: ['c-1', 'c-2', 'c-3', 'c-4'], region: 'eu-west-1' };

function harness(options: { sick?: string[]; failing?: string; signal?: AbortSignal; onDeploy?: (stack: string) => void } = {}) {
  let time = 0;
  const deployed: string[][] = [];
  const lines: string[] = [];
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
  const alarms: AlarmReader = { inAlarm: async (names) => names.filter((name) => options.sick?.includes(name)).map((name) => ({ name, reason: 'Threshold Crossed' })) };
  const deps: DeployDependencies = {
    context,
    connect: async () => {
      connected += 1;
      return { deployer, alarms };
    },
    clock: { now: () => time, sleep: async (ms) => void (time += ms) },
    print: (line) => lines.push(...line.split('\n')),
    signal: options.signal,
  };
  return { deps, deployed, lines, connected: () => connected };
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

  it.each([
    [['--cells', 'c-9'], 'npm run deploy: --cells: unknown cell: c-9 (cells: c-1, c-2, c-3, c-4)'],
    [['--cells', ' '], 'npm run deploy: --cells needs at least one cell id'],
    [['--bogus'], "npm run deploy: Unknown option '--bogus'"],
    [['now'], 'npm run deploy: unexpected argument: now'],
    [['-c', 'bakeMinutes'], 'npm run deploy: -c takes key=value, not "bakeMinutes"'],
    [['-c', 'deploymentWaves=0'], '  - deploymentWaves[0]: must be at least 1'],
  ])('refuses %j in one line with exit code 2, deploying nothing', async (argv, message) => {
    const { deps, deployed, lines, connected } = harness();
    expect(await deployCommand(argv, deps)).toBe(EXIT.usage);
    expect(lines.some((line) => line.startsWith(message))).toBe(true);
    expect(lines.join('\n')).not.toMatch(/\n\s+at /);
    expect([deployed, connected()]).toEqual([[], 0]);
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
        return { CompositeAlarms: known.filter((name) => name.endsWith('-healthy')).map(alarm), MetricAlarms: known.filter((name) => !name.endsWith('-healthy')).map(alarm) };
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
