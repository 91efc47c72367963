import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { probeOnce } from '../../bench/cold-start.ts';
import { renderMarkdown, type BenchResults } from '../../bench/report.ts';
import { PLANS, runBench } from '../../bench/run.ts';
import { testContext } from '../support/synth.ts';

describe('the cold-start probe', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'bench-probe-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const entry = (name: string, code: string) => {
    const file = path.join(dir, `${name}.mjs`);
    writeFileSync(file, code);
    return file;
  };

  it('takes its time from a channel of its own, whatever the function prints at init', async () => {
    const noisy = entry(
      'noisy',
      [
        // A number alone on stdout, an EMF line without its end, and stderr: none of it is the time.
        "process.stdout.write('7\\n');",
        'process.stdout.write(\'{"_aws":{"CloudWatchMetrics":[]},"RoutingVersion":\');',
        "console.error('init log');",
        'export const handler = async () => ({});',
      ].join('\n'),
    );
    const ms = await probeOnce(noisy, { PATH: process.env.PATH ?? '' });
    expect(ms).toBeGreaterThan(0);
    expect(ms).not.toBe(7);
  });

  it('says why when a function fails its init, with what it printed', async () => {
    const failing = entry('failing', "console.log('about to fail');\nthrow new Error('no table name');\n");
    await expect(probeOnce(failing, {})).rejects.toThrow(/failing\.mjs's init failed \(exit 1\)[\s\S]*no table name/);
    const handlerless = entry('handlerless', 'export const other = 1;\n');
    await expect(probeOnce(handlerless, {})).rejects.toThrow(/exports no handler/);
  });
});

/** The tables of a rendered report: each one's header cells and rows of cells. */
function tablesOf(markdown: string): Array<{ heading: string; header: string[]; rows: string[][] }> {
  const tables: Array<{ heading: string; header: string[]; rows: string[][] }> = [];
  let heading = '';
  let current: (typeof tables)[number] | undefined;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    const cells = line
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim());
    if (!current) {
      current = { heading, header: cells, rows: [] };
      tables.push(current);
    } else if (!cells.every((cell) => /^:?-+:?$/.test(cell))) current.rows.push(cells);
  }
  return tables;
}

describe('npm run bench, every section at its smallest', () => {
  let results: BenchResults;
  const progress: string[] = [];
  const stderr: string[] = [];

  beforeAll(async () => {
    // Anything written straight to stderr (the CDK's bundling lines, say) is the bench's noise.
    const write = process.stderr.write;
    process.stderr.write = function (this: typeof process.stderr, chunk: unknown, ...rest: unknown[]) {
      stderr.push(String(chunk));
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof process.stderr.write;
    try {
      results = await runBench({
        plan: PLANS.smoke,
        command: 'smoke',
        quick: true,
        context: testContext({ appName: 'bench-smoke' }),
        dynamoEndpoint: inject('dynamoEndpoint'),
        say: (line) => progress.push(line),
      });
    } finally {
      process.stderr.write = write;
    }
  }, 300_000);

  it('produces every table of the report, each with rows of numbers', () => {
    const tables = tablesOf(renderMarkdown(results));
    const headings = tables.map((table) => table.heading);
    for (const section of [
      'Cold start (proxy): every function',
      'Source maps at run time',
      'Bundling: where the AWS SDK and the shared code come from',
      'Router',
      'Router: its own work per request',
      'Ownership check (the cell API, every request for a tenant)',
      'Noisy neighbour',
      'Moves by tenant size',
      'Throughput through the local runtime',
    ]) {
      expect(headings).toContain(section);
    }
    for (const table of tables) {
      expect(table.rows.length, `${table.heading}: no rows`).toBeGreaterThan(0);
      for (const row of table.rows) {
        expect(row.length, `${table.heading}: a row of another width`).toBe(table.header.length);
        const numbers = row.filter((cell) => /\d/.test(cell) && !/NaN|Infinity|undefined/.test(cell));
        expect(numbers.length, `${table.heading}: ${row.join(' | ')}`).toBeGreaterThan(0);
        for (const cell of row) expect(cell, `${table.heading}: ${row.join(' | ')}`).not.toMatch(/NaN|Infinity|undefined/);
      }
    }
  });

  it('cold-starts every function of the app', () => {
    const services = results.coldStart.functions.map((row) => row.service).sort();
    expect(services).toEqual(expect.arrayContaining(['cell-api', 'router', 'publisher', 'payment']));
    for (const row of results.coldStart.functions) expect(row.initMs).toBeGreaterThan(0);
  });

  it('floods under a quota beside two quiet tenants, and measures both before and during', () => {
    const { flood, quiet } = results.noisyNeighbour;
    expect(flood.answers).toBe(flood.refused + flood.admitted + flood.other);
    expect(quiet.map((q) => q.where)).toEqual(['same cell', 'other cell']);
    for (const { before, during } of quiet) for (const figures of [before, during]) expect(figures.perSecond).toBeGreaterThan(0);
    expect(results.routerRequest.refusedRequestUs).toBeGreaterThan(0);
  });

  it('moves a tenant of each size and counts its copy and its fenced window', () => {
    expect(results.moves.bySize.map((size) => [size.items, size.moves])).toEqual(PLANS.smoke.moveSizes.map((size) => [size.items, size.moves]));
    for (const size of results.moves.bySize) {
      expect(size.cloneRecordsPerSecond).toBeGreaterThan(0);
      expect(size.fencedP50Ms).toBeGreaterThan(0);
    }
  });

  it('prints only its own progress', () => {
    expect(progress.some((line) => line.includes('▶ moves'))).toBe(true);
    expect(stderr.join('')).not.toMatch(/Bundling asset/);
  });
});
