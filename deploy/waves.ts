/**
 * The wave deploy: the control plane, then one canary cell, then waves of
 * growing size, each followed by a bake that watches the health alarms of
 * every cell deployed so far and of the control plane. The first sick
 * sign stops the rollout: no further wave starts.
 *
 * Plain logic over three interfaces (a stack deployer, an alarm reader and a
 * clock), so that tests drive it with fakes; deploy/cli.ts gives it the CDK
 * toolkit, CloudWatch and the wall clock.
 */

/** Deploys stacks by name, all of one call at once; rejects when any of them fails (CloudFormation rolled it back). */
export interface StackDeployer {
  deploy(stackNames: readonly string[]): Promise<void>;
}

/** Reads alarm states; returns those of `alarmNames` in ALARM, with CloudWatch's reason. */
export interface AlarmReader {
  inAlarm(alarmNames: readonly string[]): Promise<Array<{ name: string; reason: string }>>;
}

export interface Clock {
  now(): number;
  /** Waits `ms`, or less when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** What one step deploys, and the alarm that says each of its parts is healthy. */
export interface Step {
  /** `control plane`, `canary` or `wave N`. */
  readonly label: string;
  /** The cells of the step; none for the control plane. */
  readonly cells: readonly string[];
  readonly stacks: readonly string[];
  /** Whether a bake follows it. */
  readonly bakes: boolean;
}

export interface WavePlanInput {
  readonly cells: readonly string[];
  /** The first cell, deployed alone. @default the first of `cells` */
  readonly canaryCell?: string;
  /** Sizes of the waves after the canary; the last size repeats. @default 1, 2, 4 … */
  readonly waveSizes?: readonly number[];
  /** Only these cells, and not the control plane. @default every cell and the control plane */
  readonly only?: readonly string[];
  /** One step with every stack, no bake: the old `cdk deploy --all`. */
  readonly allAtOnce?: boolean;
  readonly controlPlaneStack: string;
  readonly cellStack: (cellId: string) => string;
}

export class PlanError extends Error {
  override name = 'PlanError';
}

/** The steps of a deploy, in order. Refuses a subset naming an unknown cell. */
export function planWaves(input: WavePlanInput): Step[] {
  const unknown = (input.only ?? []).filter((cell) => !input.cells.includes(cell));
  if (unknown.length) throw new PlanError(`unknown cell${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (cells: ${input.cells.join(', ')})`);
  // In config order, whatever order --cells named them in.
  const cells = input.only ? input.cells.filter((cell) => input.only!.includes(cell)) : [...input.cells];
  const steps: Step[] = [];
  if (input.allAtOnce) {
    const stacks = [...(input.only ? [] : [input.controlPlaneStack]), ...cells.map(input.cellStack)];
    return [{ label: 'all at once', cells, stacks, bakes: false }];
  }
  if (!input.only) steps.push({ label: 'control plane', cells: [], stacks: [input.controlPlaneStack], bakes: false });
  if (!cells.length) return steps;
  const canary = input.canaryCell && cells.includes(input.canaryCell) ? input.canaryCell : cells[0]!;
  steps.push({ label: 'canary', cells: [canary], stacks: [input.cellStack(canary)], bakes: true });
  const rest = cells.filter((cell) => cell !== canary);
  const sizes = input.waveSizes?.length ? input.waveSizes : undefined;
  for (let wave = 1, start = 0; start < rest.length; wave += 1) {
    const size = sizes ? (sizes[wave - 1] ?? sizes.at(-1)!) : 2 ** (wave - 1);
    const waveCells = rest.slice(start, start + size);
    steps.push({ label: `wave ${wave}`, cells: waveCells, stacks: waveCells.map(input.cellStack), bakes: true });
    start += size;
  }
  return steps;
}

export interface WaveDeployOptions {
  readonly steps: readonly Step[];
  readonly deployer: StackDeployer;
  readonly alarms: AlarmReader;
  readonly clock: Clock;
  /** How long each bake lasts. */
  readonly bakeMs: number;
  /** How often a bake reads the alarms. @default 30 s */
  readonly pollMs?: number;
  /** The health alarm of a cell and of the control plane, by name. */
  readonly cellAlarm: (cellId: string) => string;
  readonly controlPlaneAlarm: string;
  /** Where progress goes, one line at a time. */
  readonly print: (line: string) => void;
  /** Aborts the rollout between and during steps (Ctrl-C). */
  readonly signal?: AbortSignal;
}

export type WaveDeployResult =
  | { readonly ok: true; readonly deployed: readonly Step[] }
  | {
      readonly ok: false;
      /** The step that stopped the rollout, and why. */
      readonly stoppedAt: Step;
      readonly reason: 'deploy-failed' | 'alarm' | 'interrupted';
      readonly detail: string;
      readonly deployed: readonly Step[];
      /** The steps that never started. */
      readonly skipped: readonly Step[];
    };

class Interrupted extends Error {}

/**
 * Runs the steps in order. A step whose deploy fails stops the rollout
 * (CloudFormation has rolled that stack back, CodeDeploy its alias); an
 * alarm found after a deploy or during a bake stops it too. Every outcome is
 * printed, with what was rolled back and what was only stopped.
 */
export async function runWaveDeploy(options: WaveDeployOptions): Promise<WaveDeployResult> {
  const { steps, print, clock, signal } = options;
  const pollMs = options.pollMs ?? 30_000;
  const deployed: Step[] = [];
  const watched = [options.controlPlaneAlarm];
  const stop = (stoppedAt: Step, reason: 'deploy-failed' | 'alarm' | 'interrupted', detail: string): WaveDeployResult => {
    const skipped = steps.slice(steps.indexOf(stoppedAt) + 1);
    print(`✗ ${stoppedAt.label}: ${detail}`);
    print(`stopped at ${stoppedAt.label}; deployed: ${deployed.map((step) => step.label).join(', ') || 'nothing'}; not started: ${skipped.map((step) => step.label).join(', ') || 'nothing'}`);
    return { ok: false, stoppedAt, reason, detail, deployed, skipped };
  };
  const checkAlarms = async (step: Step): Promise<string | undefined> => {
    const firing = await options.alarms.inAlarm(watched);
    if (!firing.length) return undefined;
    const names = firing.map((alarm) => `${alarm.name} (${alarm.reason})`).join('; ');
    const stacks = deployed.flatMap((s) => s.stacks).join(', ');
    return (
      `in ALARM: ${names}. The deploy of ${step.label} had finished, so CodeDeploy has nothing left to roll back: ` +
      `the new code keeps serving in ${stacks}. Look at those stacks and the alarm; to go back, deploy the previous version to them.`
    );
  };

  for (const [index, step] of steps.entries()) {
    const heading = `[${index + 1}/${steps.length}] ${step.label}${step.cells.length ? ` (${step.cells.join(', ')})` : ''}`;
    if (signal?.aborted) return stop(step, 'interrupted', 'interrupted before it started');
    print(`${heading}: deploying ${step.stacks.join(', ')}`);
    const started = clock.now();
    try {
      await raceAbort(options.deployer.deploy(step.stacks), signal);
    } catch (error) {
      if (error instanceof Interrupted) {
        return stop(step, 'interrupted', `interrupted while deploying ${step.stacks.join(', ')}: CloudFormation may still be updating them`);
      }
      return stop(
        step,
        'deploy-failed',
        `the deploy failed: ${(error as Error).message}. A stack CloudFormation had begun to update is rolled back, ` +
          'and an alias CodeDeploy had begun to shift is shifted back: the cell serves its previous version.',
      );
    }
    deployed.push(step);
    watched.push(...step.cells.map(options.cellAlarm));
    print(`${heading}: deployed in ${formatDuration(clock.now() - started)}`);
    const sick = await checkAlarms(step);
    if (sick) return stop(step, 'alarm', sick);
    if (!step.bakes || options.bakeMs <= 0) continue;

    print(`${heading}: baking ${formatDuration(options.bakeMs)}, watching ${watched.join(', ')}`);
    const bakeEnds = clock.now() + options.bakeMs;
    while (clock.now() < bakeEnds) {
      try {
        await raceAbort(clock.sleep(Math.min(pollMs, bakeEnds - clock.now()), signal), signal);
      } catch (error) {
        if (error instanceof Interrupted) return stop(step, 'interrupted', `interrupted while baking, ${formatDuration(bakeEnds - clock.now())} before its end`);
        throw error;
      }
      const sickDuringBake = await checkAlarms(step);
      if (sickDuringBake) return stop(step, 'alarm', `during the bake, ${formatDuration(clock.now() - (bakeEnds - options.bakeMs))} in: ${sickDuringBake}`);
    }
    print(`${heading}: healthy after its bake`);
  }
  print(`✓ deployed ${deployed.map((step) => step.label).join(', ')}`);
  return { ok: true, deployed };
}

/** Settles with `work`, or rejects with Interrupted as soon as `signal` aborts. */
async function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  // Lost to an abort, its later failure is no one's to handle.
  work.catch(() => undefined);
  if (signal.aborted) throw new Interrupted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Interrupted());
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** `95 s`, `5 min`, `1 h 30 min`. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The plan as `--dry-run` prints it. */
export function describePlan(steps: readonly Step[], bakeMs: number): string[] {
  return steps.map(
    (step, index) =>
      `${index + 1}. ${step.label}: ${step.stacks.join(', ')}${step.bakes && bakeMs > 0 ? `, then bake ${formatDuration(bakeMs)}` : ''}`,
  );
}
