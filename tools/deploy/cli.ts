/**
 * `npm run deploy`: the wave deploy (deploy/waves.ts) with the CDK toolkit
 * and CloudWatch, or the plan alone (`--dry-run`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { OPERATOR, sdkClientConfig } from '../../layers/shared/src/sdk-timeouts.ts';
import { InputError, parseCommandLine, shown } from '../../lib/cli-input.ts';
import { cdkJsonContext, checkContextKeys, ConfigError, parseConfig, type AppConfig } from '../../lib/config.ts';
import { cellHealthAlarmName, controlPlaneHealthAlarmName, stackName } from '../../layers/shared/src/contracts/names.ts';
import { describePlan, formatDuration, PlanError, planWaves, runWaveDeploy, type AlarmReader, type Clock, type StackDeployer } from './waves.ts';

const USAGE = `usage: npm run deploy -- [options]

Deploys the control plane, then the canary cell alone, then the other cells
in waves of growing size; each cell wave bakes while the health alarms are
watched, and the first alarm stops the rollout.

options:
  --dry-run          print the plan; deploy nothing
  --cells <a,b>      deploy only these cells (not the control plane), in waves
  --all-at-once      every stack at once, no canary cell, no bake (sandboxes)
  -c <key>=<value>   configuration, as with cdk: stage, cells, canaryCell,
                     bakeMinutes, deploymentWaves, lambdaTrafficShift …
  -h, --help         this text

exit codes: 0 deployed, 1 stopped (a failed deploy or an alarm),
            2 bad arguments or configuration, 130 interrupted`;

export const EXIT = { ok: 0, stopped: 1, usage: 2, interrupted: 130 } as const;

export interface DeployDependencies {
  /** cdk.json's context, under the command line's `-c` values. */
  readonly context: Record<string, unknown>;
  /** The toolkit and CloudWatch, for a real run (not for `--dry-run`). */
  readonly connect: (config: AppConfig, commandLineContext: Record<string, unknown>) => Promise<{ deployer: StackDeployer; alarms: AlarmReader }>;
  readonly clock: Clock;
  /** The rollout's report: standard output. */
  readonly print: (line: string) => void;
  /** What went wrong, one line: standard error. */
  readonly error: (line: string) => void;
  readonly signal?: AbortSignal;
}

const HELP_HINT = '(npm run deploy -- --help lists the options)';

/** Runs the command; resolves to its exit code. Bad input is one line, never a stack trace. */
export async function deployCommand(argv: readonly string[], deps: DeployDependencies): Promise<number> {
  let args: ReturnType<typeof parse>;
  let config: AppConfig;
  let commandLineContext: Record<string, unknown>;
  try {
    args = parse(argv);
    if (args.help) {
      deps.print(USAGE);
      return EXIT.ok;
    }
    commandLineContext = contextPairs(args.context ?? []);
    checkContextKeys(Object.keys(commandLineContext));
    config = parseConfig((key) => commandLineContext[key] ?? deps.context[key]);
  } catch (error) {
    if (error instanceof InputError) {
      deps.error(`npm run deploy: ${error.message} ${HELP_HINT}`);
      return EXIT.usage;
    }
    if (error instanceof ConfigError) {
      deps.error(`npm run deploy: ${error.message}`);
      return EXIT.usage;
    }
    throw error;
  }

  let steps: ReturnType<typeof planWaves>;
  try {
    steps = planWaves({
      cells: config.cells,
      canaryCell: config.canaryCell,
      waveSizes: config.deploymentWaves,
      only: args.cells
        ?.split(',')
        .map((cell) => cell.trim())
        .filter(Boolean),
      allAtOnce: args['all-at-once'],
      controlPlaneStack: stackName(config, 'control-plane'),
      cellStack: (cellId) => stackName(config, cellId),
    });
  } catch (error) {
    if (!(error instanceof PlanError)) throw error;
    deps.error(`npm run deploy: --cells: ${error.message}`);
    return EXIT.usage;
  }
  const bakeMs = args['all-at-once'] ? 0 : config.bakeMinutes * 60_000;
  deps.print(`${config.appName} ${config.stage} in ${config.region}: ${steps.length} step${steps.length === 1 ? '' : 's'}`);
  for (const line of describePlan(steps, bakeMs)) deps.print(`  ${line}`);
  if (args['dry-run']) {
    deps.print('dry run: nothing deployed');
    return EXIT.ok;
  }

  const started = deps.clock.now();
  const { deployer, alarms } = await deps.connect(config, commandLineContext);
  const result = await runWaveDeploy({
    steps,
    deployer,
    alarms,
    clock: deps.clock,
    bakeMs,
    cellAlarm: (cellId) => cellHealthAlarmName(config, cellId),
    controlPlaneAlarm: controlPlaneHealthAlarmName(config),
    print: deps.print,
    signal: deps.signal,
  });
  deps.print(`${result.ok ? 'done' : 'stopped'} after ${formatDuration(deps.clock.now() - started)}`);
  if (result.ok) return EXIT.ok;
  return result.reason === 'interrupted' ? EXIT.interrupted : EXIT.stopped;
}

function parse(argv: readonly string[]) {
  const { values, positionals } = parseCommandLine(argv, {
    options: {
      'dry-run': { type: 'boolean' },
      cells: { type: 'string' },
      'all-at-once': { type: 'boolean' },
      context: { type: 'string', short: 'c', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (positionals.length) throw new InputError(`unexpected argument ${shown(positionals.join(' '))}`);
  if (values.cells !== undefined && !values.cells.trim()) throw new InputError('--cells needs at least one cell id');
  return values;
}

/** `-c key=value` pairs, as cdk takes them; the values are parsed by the config schema. */
function contextPairs(pairs: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      if (at < 1) throw new InputError(`-c takes key=value, not ${shown(pair)}`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

const wallClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await sleep(ms, undefined, { signal }).catch((error: unknown) => {
      if ((error as Error).name !== 'AbortError') throw error;
    });
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Ctrl-C stops the rollout where it is and says so; a second one ends the process at once.
  const interrupt = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted: stopping the rollout (Ctrl-C again to quit at once)\n');
    interrupt.abort();
    process.once('SIGINT', () => process.exit(EXIT.interrupted));
  });
  const code = await deployCommand(process.argv.slice(2), {
    context: cdkJsonContext(),
    // The toolkit and the SDK load only for a real run: a refused command line or --dry-run answers at once.
    connect: async (config, commandLineContext) => {
      const [{ ToolkitDeployer, CloudWatchAlarms }, { CloudWatchClient }] = await Promise.all([
        import('./aws.ts'),
        import('@aws-sdk/client-cloudwatch'),
      ]);
      return {
        deployer: await ToolkitDeployer.synthesize(commandLineContext),
        alarms: new CloudWatchAlarms(new CloudWatchClient({ region: config.region, ...sdkClientConfig(OPERATOR) })),
      };
    },
    clock: wallClock,
    print: (line) => console.log(line),
    error: (line) => console.error(line),
    signal: interrupt.signal,
  }).catch((error: unknown) => {
    console.error(`npm run deploy: ${(error as Error).message}`);
    return EXIT.stopped;
  });
  process.exit(code);
}
