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

/** One resource a deploy added, changed or removed. */
export interface Change {
  readonly logicalId: string;
  readonly type: string;
  readonly action: 'add' | 'update' | 'remove';
}

/**
 * Deploys one stack by name and resolves to what it changed; rejects when
 * the update fails (CloudFormation has rolled the stack back). A step's
 * stacks are deployed at once, one call each.
 */
export interface StackDeployer {
  deploy(stackName: string): Promise<readonly Change[]>;
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
      /** The steps whose every stack deployed. */
      readonly deployed: readonly Step[];
      /** The steps that never started. */
      readonly skipped: readonly Step[];
    };

class Interrupted extends Error {}

/** At most this many changes are named per stack; the rest are counted. */
const NAMED_CHANGES = 12;

/**
 * Runs the steps in order, the stacks of a step at once. A stack whose
 * deploy fails stops the rollout (CloudFormation has rolled that stack
 * back, and CodeDeploy its alias if a shift was under way); an alarm found
 * after a deploy or during a bake stops it too. A stop is printed with the
 * changes that stay, by stack and resource, since nothing rolls them back.
 */
export async function runWaveDeploy(options: WaveDeployOptions): Promise<WaveDeployResult> {
  const { steps, print, clock, signal } = options;
  const pollMs = options.pollMs ?? 30_000;
  const deployed: Step[] = [];
  const watched = [options.controlPlaneAlarm];
  /** The stacks of the stopped step that deployed, with what they changed: what stays when the rollout stops. */
  let landed: Array<{ stack: string; changes: readonly Change[] }> = [];

  const stop = (stoppedAt: Step, reason: 'deploy-failed' | 'alarm' | 'interrupted', detail: string[]): WaveDeployResult => {
    const skipped = steps.slice(steps.indexOf(stoppedAt) + 1);
    if (landed.length) {
      detail.push('not rolled back, by stack (look at these; to go back, deploy the previous version to them):');
      for (const { stack, changes } of landed) detail.push(`  ${stack}: ${describeChanges(changes)}`);
    }
    print(`✗ ${stoppedAt.label}: ${detail[0]}`);
    for (const line of detail.slice(1)) print(`  ${line}`);
    print(
      `stopped at ${stoppedAt.label}; deployed: ${deployed.map((step) => step.label).join(', ') || 'nothing'}; not started: ${skipped.map((step) => step.label).join(', ') || 'nothing'}`,
    );
    return { ok: false, stoppedAt, reason, detail: detail.join('\n'), deployed, skipped };
  };
  /** Why the deployed cells or the control plane are sick, if they are. */
  const sickness = async (): Promise<string | undefined> => {
    const firing = await options.alarms.inAlarm(watched);
    return firing.length ? `in ALARM: ${firing.map((alarm) => `${alarm.name} (${alarm.reason})`).join('; ')}` : undefined;
  };
  const NOT_ROLLED_BACK = "CodeDeploy's shift had finished, so nothing rolls this step back";

  for (const [index, step] of steps.entries()) {
    const heading = `[${index + 1}/${steps.length}] ${step.label}${step.cells.length ? ` (${step.cells.join(', ')})` : ''}`;
    landed = [];
    if (signal?.aborted) return stop(step, 'interrupted', ['interrupted before it started']);
    print(`${heading}: deploying ${step.stacks.join(', ')}`);
    const started = clock.now();
    let outcomes: Array<PromiseSettledResult<readonly Change[]>>;
    try {
      outcomes = await raceAbort(Promise.allSettled(step.stacks.map((stack) => options.deployer.deploy(stack))), signal);
    } catch (error) {
      if (!(error instanceof Interrupted)) throw error;
      return stop(step, 'interrupted', [`interrupted while deploying ${step.stacks.join(', ')}: CloudFormation may still be updating them`]);
    }
    landed = outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [{ stack: step.stacks[i]!, changes: outcome.value }] : []));
    const failed = outcomes.flatMap((outcome, i) =>
      outcome.status === 'rejected' ? [`${step.stacks[i]}: ${(outcome.reason as Error).message}`] : [],
    );
    if (failed.length) {
      return stop(step, 'deploy-failed', [
        `the deploy of ${failed.length === 1 ? 'a stack' : `${failed.length} stacks`} failed. CloudFormation rolled ${failed.length === 1 ? 'it' : 'each'} back, ` +
          'and CodeDeploy shifted back an alias it had begun to shift: the cell serves its previous version',
        ...failed.map((line) => `rolled back: ${line}`),
      ]);
    }
    deployed.push(step);
    watched.push(...step.cells.map(options.cellAlarm));
    print(`${heading}: deployed in ${formatDuration(clock.now() - started)}`);
    const sick = await sickness();
    if (sick) return stop(step, 'alarm', [`${sick}, right after the deploy`, NOT_ROLLED_BACK]);
    if (!step.bakes || options.bakeMs <= 0) continue;

    print(`${heading}: baking ${formatDuration(options.bakeMs)}, watching ${watched.join(', ')}`);
    const bakeStarted = clock.now();
    const bakeEnds = bakeStarted + options.bakeMs;
    while (clock.now() < bakeEnds) {
      try {
        await raceAbort(clock.sleep(Math.min(pollMs, bakeEnds - clock.now()), signal), signal);
      } catch (error) {
        if (!(error instanceof Interrupted)) throw error;
        return stop(step, 'interrupted', [`interrupted while baking, ${formatDuration(bakeEnds - clock.now())} before its end`]);
      }
      const sickDuringBake = await sickness();
      if (sickDuringBake)
        return stop(step, 'alarm', [`${sickDuringBake}, during the bake, ${formatDuration(clock.now() - bakeStarted)} in`, NOT_ROLLED_BACK]);
    }
    print(`${heading}: healthy after its bake`);
  }
  print(`✓ deployed ${deployed.map((step) => step.label).join(', ')}`);
  return { ok: true, deployed };
}

/** `AWS::Lambda::Function Api (update), …` with the rest counted. */
export function describeChanges(changes: readonly Change[]): string {
  if (!changes.length) return 'no resource changed';
  const named = changes.slice(0, NAMED_CHANGES).map((change) => `${change.type} ${change.logicalId} (${change.action})`);
  const more = changes.length - named.length;
  return `${named.join(', ')}${more > 0 ? `, and ${more} more` : ''}`;
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
