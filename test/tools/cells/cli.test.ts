import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pMap from 'p-map';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromRoot } from '../../../lib/paths.ts';
import { runTool } from '../../support/processes.ts';

/**
 * `npm run cells` refusing bad input: one line on stderr, exit code 2 for a
 * usage error, nothing on stdout, and nothing reached. The runtime it would
 * reach does not exist, so input that got past the checks would say so.
 */
let dir: string;
let noRuntime: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cells-cli-'));
  noRuntime = path.join(dir, 'no-runtime.json');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cells = (args: string[]) => runTool('tools/cells/cli.ts', args);

const HINT = ' (npm run cells -- --help lists the commands and options)';
const plan = (moves: unknown) => {
  const file = path.join(dir, `plan-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ basedOnVersion: 1, moves }));
  return file;
};

describe('npm run cells: bad input', () => {
  it('refuses each in one line, naming what is wrong, and reaches nothing', async () => {
    const notPlan = (file: string, what: string) => `error: ${path.relative(fromRoot(), file)} is not a plan that cells plan saved: ${what}`;
    const badState = path.join(dir, 'bad-state.json');
    writeFileSync(badState, '{ not json');
    const wrongState = path.join(dir, 'wrong-state.json');
    writeFileSync(wrongState, '{"pid": 1}');
    const plans = {
      reversed: plan([{ from: 'cell-1', to: 'cell-2', count: 4, ranges: [[5, 2]] }]),
      outside: plan([{ from: 'cell-1', to: 'cell-2', count: -7, ranges: [[20000, 20000]] }]),
      negative: plan([{ from: 'cell-1', to: 'cell-2', count: -7, ranges: [] }]),
      shape: plan([{ from: 'cell-1', to: 'cell-2', ranges: [[1, 2]] }]),
      uneven: plan([{ from: 'cell-1', to: 'cell-2', count: 3, ranges: [[1, 2]] }]),
      same: plan([{ from: 'cell-1', to: 'cell-1', count: 2, ranges: [[1, 2]] }]),
      twice: plan([
        { from: 'cell-1', to: 'cell-2', count: 2, ranges: [[1, 2]] },
        { from: 'cell-3', to: 'cell-2', count: 1, ranges: [[2, 2]] },
      ]),
    };
    const cases: Array<[string[], number, string]> = [
      [[], 2, `error: name a command${HINT}`],
      [['frobnicate'], 2, `error: unknown command "frobnicate"${HINT}`],
      [['list', '--bogus'], 2, `error: unknown option "--bogus"${HINT}`],
      [['pin', 'only-one'], 2, `error: pin takes <tenantId> <cellId>${HINT}`],
      // Buckets: a number from 0 to 16383, or a range a-b with a ≤ b; -1 is a bucket that does not exist, not an option.
      ...['-1', '20000', '5-2', 'x-y', '', '0x10', '1e3', ' 5'].map((bucket): [string[], number, string] => [
        ['move', 'bucket', bucket, 'cell-2'],
        2,
        `error: ${JSON.stringify(bucket)} is no bucket: buckets are 0 to 16383; give one, or a range a-b with a ≤ b${HINT}`,
      ]),
      [['tenants', 'cell-1', '-3'], 2, `error: "-3" is no bucket: buckets are 0 to 16383; give one, or a range a-b with a ≤ b${HINT}`],
      // Whole numbers: empty, spaces, hex, exponents, fractions and signs are each refused, never read as 0, 16 or 100.
      ...['', ' ', '0x10', '1e2', '2.5', '-5', '99999999'].map((grace): [string[], number, string] => [
        ['move', 'tenant', 'acme', 'cell-2', '--grace', grace],
        2,
        `error: --grace must be a whole number from 0 to 86400, not ${JSON.stringify(grace)}${HINT}`,
      ]),
      [['history', '--limit', ''], 2, `error: --limit must be a whole number from 1 to 1000, not ""${HINT}`],
      [['history', '--limit', '0'], 2, `error: --limit must be a whole number from 1 to 1000, not "0"${HINT}`],
      [['apply', '--concurrency', '0'], 2, `error: --concurrency must be a whole number from 1 to 64, not "0"${HINT}`],
      // A revert names the move, and only the move.
      [
        ['move', 'tenant', 'acme', 'cell-2', '--revert', 'm-1'],
        2,
        `error: move --revert <moveId> takes no other arguments: the move says what goes back, and where${HINT}`,
      ],
      [['move', '--revert', 'm-1', '--abort'], 2, `error: move takes --revert or --abort, not both${HINT}`],
      [['move', '--revert', ''], 2, `error: --revert takes a move id (cells moves lists them), not ""${HINT}`],
      // User input comes back escaped and shortened.
      [['route', '\u001b[31mred'], 2, `error: tenant id "\\u001b[31mred" must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_" or "-"${HINT}`],
      [
        ['route', 'x'.repeat(100_000)],
        2,
        `error: tenant id "${'x'.repeat(64)}…" (100,000 characters) must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_" or "-"${HINT}`,
      ],
      [['move', 'tenant', 'a b', 'cell-2'], 2, `error: tenant id "a b" must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_" or "-"${HINT}`],
      // Plans: checked whole before anything runs, naming the file and the field.
      [['apply', plans.reversed], 1, notPlan(plans.reversed, 'moves[0].ranges[0] must have first ≤ last (and 1 more)')],
      [['apply', plans.outside], 1, notPlan(plans.outside, 'moves[0].count must be 0 or more (and 3 more)')],
      [['apply', plans.negative], 1, notPlan(plans.negative, 'moves[0].count must be 0 or more (and 1 more)')],
      [['apply', plans.shape], 1, notPlan(plans.shape, 'moves[0].count must be a number of buckets')],
      [['apply', plans.uneven], 1, notPlan(plans.uneven, 'moves[0].count is 3, but the ranges hold 2 buckets')],
      [['apply', plans.same], 1, notPlan(plans.same, 'moves[0].to is the cell the buckets are in (cell-1)')],
      [['apply', plans.twice], 1, notPlan(plans.twice, 'moves[1] names bucket 2, which moves[0] moves too')],
      // The local runtime's state file: named when it is missing or not one.
      [['list'], 1, `error: no local runtime is running (no ${path.relative(fromRoot(), noRuntime)}): start one with npm start`],
    ];
    const results = await pMap(cases, async ([args]) => cells([...args, '--local', '--local-state', noRuntime]), { concurrency: 4 });
    const bad = await pMap([badState, wrongState], async (file) => cells(['list', '--local', '--local-state', file]), { concurrency: 2 });
    expect(results.map((r, i) => ({ args: cases[i]![0].join(' ').slice(0, 80), code: r.code, stderr: r.stderr, stdout: r.stdout }))).toEqual(
      cases.map(([args, code, line]) => ({ args: args.join(' ').slice(0, 80), code, stderr: `${line}\n`, stdout: '' })),
    );
    expect(bad.map((r) => [r.code, r.stdout])).toEqual([
      [1, ''],
      [1, ''],
    ]);
    expect(bad[0]!.stderr).toMatch(/^error: .*bad-state\.json is not a local runtime's state file: .+\n$/);
    expect(bad[1]!.stderr).toMatch(
      /^error: .*wrong-state\.json is not a local runtime's state file: it has no appName, url, dynamoEndpoint, ssmParameters\n$/,
    );
  });
});
