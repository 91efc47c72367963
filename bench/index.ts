/**
 * `npm run bench`: what users pay for, measured side by side in one run on
 * this machine. Prints tables, writes BENCHMARKS.md and benchmarks.json.
 *
 *   npm run bench               the full run (20 processes per cold start)
 *   npm run bench -- --quick    fewer samples, under two minutes
 *   npm run bench -- --out DIR  write the reports elsewhere (default: the repository root)
 *   npm run bench -- --baseline DIR  also cold-start each function of another build's cdk.out, side by side
 *   npm run bench -- --move-sizes 100000x1  the moves by tenant size to run: records[xmoves], comma-separated
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InputError, parseCommandLine, shown, wholeNumber } from '../lib/cli-input.ts';
import { fromRoot } from '../lib/paths.ts';

const USAGE = 'usage: npm run bench [-- --quick] [-- --out DIR] [-- --max-instances N] [-- --baseline CDK_OUT] [-- --move-sizes RECORDS[xMOVES],…]';
const say = (line: string) => process.stderr.write(`${line}\n`);

const parseOptions = () =>
  parseCommandLine(process.argv.slice(2), {
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: fromRoot() },
      'max-instances': { type: 'string' },
      'move-sizes': { type: 'string' },
      baseline: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;

let args: ReturnType<typeof parseOptions>;
let maxInstances: number | undefined;
let moveSizes: Array<{ items: number; moves: number }> | undefined;
try {
  args = parseOptions();
  maxInstances = args['max-instances'] === undefined ? undefined : wholeNumber('--max-instances', args['max-instances'], { min: 1 });
  moveSizes = args['move-sizes']?.split(',').map((part) => {
    const [items = '', moves = '1'] = part.split('x');
    return {
      items: wholeNumber('--move-sizes: records', items, { min: 1, max: 10_000_000 }),
      moves: wholeNumber('--move-sizes: moves', moves, { min: 1, max: 100 }),
    };
  });
  // Where the reports go is settled before minutes of measuring, not after.
  try {
    mkdirSync(args.out, { recursive: true });
  } catch (cause) {
    throw new InputError(
      `--out must be a directory the bench can write into, not ${shown(args.out)} (${(cause as NodeJS.ErrnoException).code ?? 'unusable'})`,
    );
  }
} catch (error) {
  if (!(error instanceof InputError)) throw error;
  say(`npm run bench: ${error.message} (npm run bench -- --help lists the options)`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

// The bench's modules (the CDK, the local runtime) load once the command line is known to be good.
const [{ printReport, renderMarkdown }, { PLANS, runBench }] = await Promise.all([import('./report.ts'), import('./run.ts')]);
try {
  const results = await runBench({
    plan: { ...(args.quick ? PLANS.quick : PLANS.full), ...(moveSizes && { moveSizes }) },
    command: `npm run bench${args.quick ? ' -- --quick' : ''}${args.baseline ? ` -- --baseline ${args.baseline}` : ''}${args['move-sizes'] ? ` -- --move-sizes ${args['move-sizes']}` : ''}`,
    quick: args.quick,
    ...(maxInstances !== undefined && { maxInstancesPerFunction: maxInstances }),
    ...(args.baseline !== undefined && { baseline: args.baseline }),
    say,
  });
  printReport(results);
  writeFileSync(path.join(args.out, 'benchmarks.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(args.out, 'BENCHMARKS.md'), renderMarkdown(results));
  say(`\nwrote ${path.join(args.out, 'BENCHMARKS.md')} and benchmarks.json in ${results.durationSeconds.toFixed(0)} s`);
} catch (error) {
  say(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
}
