import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { evenSplit } from '../../routing/routing.ts';
import { startLocalRuntime, type LocalRuntime } from '../../local/runtime.ts';
import { isAlive, runTool } from '../support/processes.ts';
import { cellOfBucket } from '../support/routing.ts';
import { testContext } from '../support/synth.ts';

/**
 * One tenant floods the local runtime while quiet tenants in its cell and in
 * another keep sending one request at a time: the router refuses the flood
 * over the tenant's quota before any cell, and a cell at its reserved
 * concurrency is refused for its own requests only. Latency is the bench's
 * business ("Noisy neighbour"); this asserts who gets which answer.
 */
const CELLS = ['cell-1', 'cell-2'];
const map = evenSplit(CELLS);
let runtime: LocalRuntime;
let outdir: string;

beforeAll(async () => {
  outdir = mkdtempSync(path.join(tmpdir(), 'item-master-noisy-'));
  runtime = await startLocalRuntime({
    port: 0,
    webSocketPort: 0,
    outdir,
    dynamoEndpoint: inject('dynamoEndpoint'),
    // cell-1 serves 4 requests at once at most: the second flood reaches that limit, the first stays below it.
    context: testContext({ appName: 'noisy', cells: CELLS, routingRefreshSeconds: 1, cellConcurrency: { 'cell-1': 4 } }),
    stateFile: path.join(outdir, 'local-runtime.json'),
    functionOutput: () => {},
  });
});
afterAll(async () => {
  const pids = runtime?.pids() ?? [];
  await runtime?.stop();
  rmSync(outdir, { recursive: true, force: true });
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
});

const cells = (...args: string[]) => runTool('tools/cells/cli.ts', [...args, '--local', '--local-state', path.join(outdir, 'local-runtime.json')]);

function tenantIn(cellId: string, prefix: string): string {
  for (let n = 0; ; n += 1) if (cellOfBucket(map, `${prefix}-${n}`) === cellId) return `${prefix}-${n}`;
}

const tokens = new Map<string, string>();
async function get(tenantId: string) {
  if (!tokens.has(tenantId)) tokens.set(tenantId, (await runtime.issuer!.issue({ tenantId })).access_token);
  const response = await fetch(`${runtime.url}/tenants/${tenantId}/items`, { headers: { authorization: `Bearer ${tokens.get(tenantId)}` } });
  const body = (await response.json()) as { error?: { code: string } };
  return { status: response.status, code: body.error?.code, headers: response.headers };
}

/** `concurrency` GETs of `tenantId` in flight until `done` resolves; every answer kept. */
async function flood(tenantId: string, concurrency: number, done: Promise<unknown>) {
  const answers: Array<Awaited<ReturnType<typeof get>>> = [];
  let over = false;
  void done.then(() => (over = true));
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!over) answers.push(await get(tenantId));
    }),
  );
  return answers;
}

/** One GET at a time of each quiet tenant, `count` each. */
async function quietly(tenants: readonly string[], count: number) {
  const answers = new Map<string, number[]>(tenants.map((t) => [t, []]));
  await Promise.all(
    tenants.map(async (tenantId) => {
      for (let n = 0; n < count; n += 1) answers.get(tenantId)!.push((await get(tenantId)).status);
    }),
  );
  return answers;
}

describe('a noisy neighbour', () => {
  const noisy = tenantIn('cell-1', 'noisy');
  const heavy = tenantIn('cell-1', 'heavy');
  const quietHere = tenantIn('cell-1', 'quiet');
  const quietThere = tenantIn('cell-2', 'quiet');

  it('gets 429 with the RateLimit fields over its quota, while quiet tenants in its cell and another get only 200s', async () => {
    const set = await cells('quota', 'set', noisy, '--rate', '5', '--burst', '5');
    expect([set.code, set.stderr]).toEqual([0, '']);
    expect(set.stdout).toContain(`${noisy}: 5 requests a second, bursts of 5`);
    // The router takes the quota at its next refresh (1 s here): until then the default holds.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const quiet = quietly([quietHere, quietThere], 30);
    // Three in flight and the quiet one stay within cell-1's 4, even for a router instance that still holds the default quota.
    const answers = await flood(noisy, 3, quiet);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused.length).toBeGreaterThan(answers.length / 2);
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200, 429]));
    expect(refused[0]!.code).toBe('quota_exceeded');
    expect(refused[0]!.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(refused[0]!.headers.get('ratelimit-policy')).toBe('"tenant";q=5;w=1');
    expect(refused[0]!.headers.get('ratelimit')).toMatch(/^"tenant";r=0;t=[1-9]\d*$/);
    for (const statuses of (await quiet).values()) expect(new Set(statuses)).toEqual(new Set([200]));
  });

  it('refuses a cell at its reserved concurrency with cell_busy for that cell only: the other cell keeps serving', async () => {
    // A tenant whose quota lets its flood through to its cell.
    expect((await cells('quota', 'set', heavy, '--rate', '100000', '--burst', '100000')).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const quiet = quietly([quietThere], 40);
    const answers = await flood(heavy, 16, quiet);
    const busy = answers.filter((a) => a.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(new Set(busy.map((a) => a.code))).toEqual(new Set(['cell_busy']));
    expect(busy[0]!.headers.get('retry-after')).toBe('1');
    expect(busy[0]!.headers.get('x-cell-id')).toBe('cell-1');
    expect(new Set((await quiet).get(quietThere))).toEqual(new Set([200]));
  });

  it('lists, reads and unsets quotas, and refuses bad ones in one line, changing nothing', async () => {
    const list = await cells('quota', 'list');
    expect(list.stdout).toContain(noisy);
    expect((await cells('quota', 'get', quietHere)).stdout).toContain('(the default)');
    for (const [args, message] of [
      [['quota', 'set', noisy, '--rate', '0'], '--rate must be a whole number from 1 to 100000, not "0"'],
      [['quota', 'set', noisy, '--rate', '-3'], '--rate must be a whole number from 1 to 100000, not "-3"'],
      [['quota', 'set', noisy, '--rate', 'fast'], '--rate must be a whole number from 1 to 100000, not "fast"'],
      [['quota', 'set', noisy, '--rate', '99999999999'], '--rate must be a whole number from 1 to 100000, not "99999999999"'],
      [['quota', 'set', noisy, '--rate', '10', '--burst', '5'], 'burst (5) must be at least the rate (10)'],
      [['quota', 'set', 'no such tenant!', '--rate', '10'], 'tenant id "no such tenant!"'],
      [['quota', 'unset', quietHere], `tenant ${quietHere} has no quota of its own`],
    ] as const) {
      const run = await cells(...args);
      expect(run.code, args.join(' ')).not.toBe(0);
      expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(run.stderr).toContain(message);
    }
    expect((await cells('quota', 'get', noisy)).stdout).toContain(`${noisy}: 5 requests a second, bursts of 5 (its own`);
    expect((await cells('quota', 'unset', noisy)).stdout).toContain(`${noisy}: back to the default`);
    expect((await cells('quota', 'get', noisy)).stdout).toContain('(the default)');
  });
});
