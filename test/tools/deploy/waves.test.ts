import { describe, expect, it } from 'vitest';
import {
  describeChanges,
  describePlan,
  PlanError,
  planWaves,
  runWaveDeploy,
  type AlarmReader,
  type Change,
  type Clock,
  type StackDeployer,
  type WavePlanInput,
} from '../../../tools/deploy/waves.ts';

const MINUTE = 60_000;
const CELLS = ['cell-1', 'cell-2', 'cell-3', 'cell-4', 'cell-5', 'cell-6'];
const base: WavePlanInput = { cells: CELLS, controlPlaneStack: 'app-cp', cellStack: (cell) => `app-${cell}` };
const alarmOf = (cell: string) => `${cell}-healthy`;

/** A clock that only moves when the orchestrator sleeps; a sleep ends early when its signal aborts. */
class FakeClock implements Clock {
  time = 0;
  readonly sleeps: number[] = [];
  now(): number {
    return this.time;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    if (signal?.aborted) return;
    this.time += ms;
  }
}

/**
 * Records each stack's deploy with the time it started. A step's stacks run
 * at once: each ends `deployMs` after its start, so a step takes `deployMs`
 * whatever its size. The stacks in `failing` fail; each other stack changes
 * its API function.
 */
class FakeDeployer implements StackDeployer {
  readonly calls: Array<{ at: number; stack: string }> = [];
  constructor(
    private readonly clock: FakeClock,
    private readonly options: { deployMs?: number; failing?: string[]; onDeploy?: (stack: string) => Promise<void> | void } = {},
  ) {}
  async deploy(stack: string): Promise<readonly Change[]> {
    const at = this.clock.time;
    this.calls.push({ at, stack });
    await this.options.onDeploy?.(stack);
    await Promise.resolve();
    this.clock.time = Math.max(this.clock.time, at + (this.options.deployMs ?? 4 * MINUTE));
    if (this.options.failing?.includes(stack)) throw new Error(`${stack} failed: UPDATE_ROLLBACK_COMPLETE`);
    return [{ logicalId: 'Api', type: 'AWS::Lambda::Function', action: 'update' }];
  }
  /** The stacks deployed together, in order, with the time they started. */
  get steps(): Array<{ at: number; stacks: string[] }> {
    const steps: Array<{ at: number; stacks: string[] }> = [];
    for (const { at, stack } of this.calls) {
      if (steps.at(-1)?.at === at) steps.at(-1)!.stacks.push(stack);
      else steps.push({ at, stacks: [stack] });
    }
    return steps;
  }
}

/** Alarms that go into ALARM at a fake time: `{ 'cell-3-healthy': 20 * MINUTE }`. Records every read. */
class FakeAlarms implements AlarmReader {
  readonly reads: Array<readonly string[]> = [];
  constructor(
    private readonly clock: FakeClock,
    private readonly firesAt: Record<string, number> = {},
  ) {}
  async inAlarm(names: readonly string[]) {
    this.reads.push(names);
    return names.filter((name) => (this.firesAt[name] ?? Infinity) <= this.clock.time).map((name) => ({ name, reason: 'Threshold Crossed' }));
  }
}

function rollout(options: {
  plan?: Partial<WavePlanInput>;
  firesAt?: Record<string, number>;
  failing?: string[];
  bakeMs?: number;
  signal?: AbortSignal;
  onDeploy?: (stack: string) => Promise<void> | void;
}) {
  const clock = new FakeClock();
  const deployer = new FakeDeployer(clock, { failing: options.failing, onDeploy: options.onDeploy });
  const alarms = new FakeAlarms(clock, options.firesAt);
  const lines: string[] = [];
  const run = runWaveDeploy({
    steps: planWaves({ ...base, ...options.plan }),
    deployer,
    alarms,
    clock,
    bakeMs: options.bakeMs ?? 15 * MINUTE,
    pollMs: 30_000,
    cellAlarm: alarmOf,
    controlPlaneAlarm: 'cp-healthy',
    print: (line) => lines.push(line),
    signal: options.signal,
  });
  return { run, clock, deployer, alarms, lines };
}

describe('planWaves', () => {
  it('deploys the control plane, then the canary cell alone, then waves of 1, 2, 4 … cells', () => {
    const steps = planWaves({ ...base, cells: [...CELLS, 'cell-7', 'cell-8', 'cell-9'] });
    expect(steps.map((step) => [step.label, step.stacks, step.bakes])).toEqual([
      ['control plane', ['app-cp'], false],
      ['canary', ['app-cell-1'], true],
      ['wave 1', ['app-cell-2'], true],
      ['wave 2', ['app-cell-3', 'app-cell-4'], true],
      ['wave 3', ['app-cell-5', 'app-cell-6', 'app-cell-7', 'app-cell-8'], true],
      ['wave 4', ['app-cell-9'], true],
    ]);
  });

  it('takes the canary cell and the wave sizes from config, the last size repeating', () => {
    const steps = planWaves({ ...base, canaryCell: 'cell-4', waveSizes: [2] });
    expect(steps.map((step) => step.cells)).toEqual([[], ['cell-4'], ['cell-1', 'cell-2'], ['cell-3', 'cell-5'], ['cell-6']]);
    expect(planWaves({ ...base, waveSizes: [1, 3] }).map((step) => step.cells.length)).toEqual([0, 1, 1, 3, 1]);
  });

  it('deploys only a subset, in config order, without the control plane; refuses an unknown cell', () => {
    const steps = planWaves({ ...base, only: ['cell-5', 'cell-2', 'cell-3'] });
    expect(steps.map((step) => [step.label, step.cells])).toEqual([
      ['canary', ['cell-2']],
      ['wave 1', ['cell-3']],
      ['wave 2', ['cell-5']],
    ]);
    expect(() => planWaves({ ...base, only: ['cell-2', 'cell-9', 'x'] })).toThrow(
      new PlanError('unknown cells: cell-9, x (cells: cell-1, cell-2, cell-3, cell-4, cell-5, cell-6)'),
    );
  });

  it('keeps the old behaviour all at once: every stack in one step, no bake', () => {
    expect(planWaves({ ...base, allAtOnce: true })).toEqual([
      { label: 'all at once', cells: CELLS, stacks: ['app-cp', ...CELLS.map((cell) => `app-${cell}`)], bakes: false },
    ]);
    expect(planWaves({ ...base, allAtOnce: true, only: ['cell-2'] })[0]!.stacks).toEqual(['app-cell-2']);
  });

  it('describes the plan with its bakes', () => {
    expect(describePlan(planWaves({ ...base, cells: ['cell-1', 'cell-2'] }), 15 * MINUTE)).toEqual([
      '1. control plane: app-cp',
      '2. canary: app-cell-1, then bake 15 min',
      '3. wave 1: app-cell-2, then bake 15 min',
    ]);
  });
});

describe('runWaveDeploy', () => {
  it('deploys the stacks in order, each wave after the last one has baked for bakeMinutes', async () => {
    const { run, deployer, clock, lines } = rollout({});
    expect(await run).toMatchObject({ ok: true });
    const deploy = 4 * MINUTE;
    const bake = 15 * MINUTE;
    expect(deployer.steps).toEqual([
      { at: 0, stacks: ['app-cp'] },
      { at: deploy, stacks: ['app-cell-1'] },
      { at: 2 * deploy + bake, stacks: ['app-cell-2'] },
      { at: 3 * deploy + 2 * bake, stacks: ['app-cell-3', 'app-cell-4'] },
      { at: 4 * deploy + 3 * bake, stacks: ['app-cell-5', 'app-cell-6'] },
    ]);
    expect(clock.time).toBe(5 * deploy + 4 * bake);
    // It reads the alarms at least every 30 s of a bake.
    expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(30_000);
    expect(lines).toContain('[2/5] canary (cell-1): baking 15 min, watching cp-healthy, cell-1-healthy');
    expect(lines.at(-1)).toBe('✓ deployed control plane, canary, wave 1, wave 2, wave 3');
  });

  it('stops on an alarm in wave 2: wave 3 never starts, and the report names the alarm and the stacks to look at', async () => {
    const wave2Deployed = 3 * 4 * MINUTE + 2 * 15 * MINUTE + 4 * MINUTE;
    const { run, deployer, lines } = rollout({ firesAt: { 'cell-4-healthy': wave2Deployed + 6 * MINUTE } });
    const result = await run;
    expect(result).toMatchObject({ ok: false, reason: 'alarm', stoppedAt: { label: 'wave 2' }, skipped: [{ label: 'wave 3' }] });
    expect(deployer.calls.map((call) => call.stack)).not.toContain('app-cell-5');
    const report = lines.slice(lines.findIndex((line) => line.startsWith('✗ wave 2')));
    expect(report).toEqual([
      '✗ wave 2: in ALARM: cell-4-healthy (Threshold Crossed), during the bake, 6 min in',
      "  CodeDeploy's shift had finished, so nothing rolls this step back",
      '  not rolled back, by stack (look at these; to go back, deploy the previous version to them):',
      '    app-cell-3: AWS::Lambda::Function Api (update)',
      '    app-cell-4: AWS::Lambda::Function Api (update)',
      'stopped at wave 2; deployed: control plane, canary, wave 1, wave 2; not started: wave 3',
    ]);
  });

  it('catches an alarm that fires during a bake within one poll, and an alarm of a cell deployed earlier too', async () => {
    const firesAt = 4 * MINUTE + 4 * MINUTE + 7 * MINUTE + 10_000;
    const { run, clock } = rollout({ firesAt: { 'cell-1-healthy': firesAt } });
    expect(await run).toMatchObject({ ok: false, reason: 'alarm', stoppedAt: { label: 'canary' } });
    expect(clock.time).toBeGreaterThanOrEqual(firesAt);
    expect(clock.time).toBeLessThanOrEqual(firesAt + 30_000);

    // The canary falls sick while wave 1 bakes: wave 1 stops there.
    const later = rollout({ firesAt: { 'cell-1-healthy': 2 * 4 * MINUTE + 15 * MINUTE + 4 * MINUTE + 60_000 } });
    expect(await later.run).toMatchObject({ ok: false, stoppedAt: { label: 'wave 1' } });
  });

  it("stops when the control plane's health alarm fires during a cell's bake", async () => {
    const { run } = rollout({ firesAt: { 'cp-healthy': 10 * MINUTE } });
    expect(await run).toMatchObject({ ok: false, reason: 'alarm', stoppedAt: { label: 'canary' } });
  });

  it('stops at once when a cell is in ALARM right after its deploy, before any bake', async () => {
    const { run, clock } = rollout({ firesAt: { 'cell-2-healthy': 0 } });
    expect(await run).toMatchObject({ ok: false, reason: 'alarm', stoppedAt: { label: 'wave 1' } });
    expect(clock.time).toBe(3 * 4 * MINUTE + 15 * MINUTE);
  });

  it('stops when a deploy fails (CodeDeploy rolled the canary back), and says so', async () => {
    const { run, deployer, lines } = rollout({ failing: ['app-cell-2'] });
    expect(await run).toMatchObject({
      ok: false,
      reason: 'deploy-failed',
      stoppedAt: { label: 'wave 1' },
      deployed: [{ label: 'control plane' }, { label: 'canary' }],
    });
    expect(deployer.calls).toHaveLength(3);
    expect(lines.slice(lines.findIndex((line) => line.startsWith('✗ wave 1')))).toEqual([
      '✗ wave 1: the deploy of a stack failed. CloudFormation rolled it back, and CodeDeploy shifted back an alias it had begun to shift: the cell serves its previous version',
      '  rolled back: app-cell-2: app-cell-2 failed: UPDATE_ROLLBACK_COMPLETE',
      'stopped at wave 1; deployed: control plane, canary; not started: wave 2, wave 3',
    ]);
  });

  it('names what stays when one stack of a wave fails and another deploys', async () => {
    const { run, lines } = rollout({ failing: ['app-cell-4'] });
    expect(await run).toMatchObject({ ok: false, reason: 'deploy-failed', stoppedAt: { label: 'wave 2' } });
    expect(lines.slice(lines.findIndex((line) => line.startsWith('✗ wave 2')) + 1)).toEqual([
      '  rolled back: app-cell-4: app-cell-4 failed: UPDATE_ROLLBACK_COMPLETE',
      '  not rolled back, by stack (look at these; to go back, deploy the previous version to them):',
      '    app-cell-3: AWS::Lambda::Function Api (update)',
      'stopped at wave 2; deployed: control plane, canary, wave 1; not started: wave 3',
    ]);
  });

  it('deploys only the subset it is given', async () => {
    const { run, deployer } = rollout({ plan: { only: ['cell-3', 'cell-6'] } });
    expect(await run).toMatchObject({ ok: true });
    expect(deployer.steps.map((step) => step.stacks)).toEqual([['app-cell-3'], ['app-cell-6']]);
  });

  it('stops when interrupted during a deploy or a bake, and says where', async () => {
    const duringDeploy = new AbortController();
    const hung = rollout({
      signal: duringDeploy.signal,
      onDeploy: (stack) =>
        stack === 'app-cell-2'
          ? new Promise<void>(() => {
              duringDeploy.abort();
            })
          : undefined,
    });
    expect(await hung.run).toMatchObject({ ok: false, reason: 'interrupted', stoppedAt: { label: 'wave 1' } });
    expect(hung.lines).toContain('✗ wave 1: interrupted while deploying app-cell-2: CloudFormation may still be updating them');
    // The canary's changes were kept on purpose (it baked healthy); the interrupted stack's are unknown.
    expect(hung.lines.join('\n')).not.toContain('not rolled back');
    expect(hung.lines.at(-1)).toBe('stopped at wave 1; deployed: control plane, canary; not started: wave 2, wave 3');

    const duringBake = new AbortController();
    const baking = rollout({ signal: duringBake.signal });
    const originalSleep = baking.clock.sleep.bind(baking.clock);
    baking.clock.sleep = async (ms, signal) => {
      if (baking.clock.time >= 10 * MINUTE) duringBake.abort();
      return originalSleep(ms, signal);
    };
    expect(await baking.run).toMatchObject({ ok: false, reason: 'interrupted', stoppedAt: { label: 'canary' } });
    expect(baking.lines.find((line) => line.startsWith('✗ canary'))).toMatch(/interrupted while baking, \d+ min before its end/);
    expect(baking.deployer.calls).toHaveLength(2);
  });

  it('names at most 12 changes of a stack and counts the rest', () => {
    const changes = Array.from({ length: 14 }, (_, i): Change => ({ logicalId: `R${i}`, type: 'AWS::SQS::Queue', action: i ? 'update' : 'add' }));
    expect(describeChanges(changes)).toMatch(/^AWS::SQS::Queue R0 \(add\), AWS::SQS::Queue R1 \(update\), .*R11 \(update\), and 2 more$/);
    expect(describeChanges([])).toBe('no resource changed');
  });

  it('bakes nothing with bakeMinutes 0', async () => {
    const { run, clock, alarms } = rollout({ bakeMs: 0 });
    expect(await run).toMatchObject({ ok: true });
    expect(clock.sleeps).toEqual([]);
    // Still checks every step's health right after its deploy.
    expect(alarms.reads).toHaveLength(5);
  });
});
