import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cdkJsonContext, parseConfig } from '../../lib/config.ts';
import { fromRoot } from '../../lib/paths.ts';
import { startDynamoDBLocal } from '../../local/dynamodb-local.ts';
import { startLocalRuntime } from '../../local/runtime.ts';
import { stateDir } from '../../control-plane/local-target.ts';
import { isAlive, waitForExit } from '../support/processes.ts';
import { eventually } from '../support/eventually.ts';

// npm start runs what cdk.json says, a fork's own name and cells included.
const CONFIG = parseConfig((key) => cdkJsonContext()[key]);
const PID_FILE = path.join(stateDir(CONFIG.appName), 'dynamodb-local.pid');
const started: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The pids whose parent is `pid` (Linux: /proc). */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        // The parent pid is the 4th field, after the command in parentheses.
        return Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Runs `npm start`'s program with a cloud assembly directory that does not exist yet. */
async function startCli(...extra: string[]): Promise<{ child: ChildProcess; url: string; out: string; output: () => string }> {
  const given = extra.indexOf('--out');
  const out = given >= 0 ? extra.splice(given, 2)[1]! : path.join(mkdtempSync(path.join(tmpdir(), 'item-master-cli-')), 'cdk.out');
  dirs.push(path.dirname(out));
  const child = spawn(process.execPath, ['--import', 'tsx', fromRoot('local', 'cli.ts'), '--port', '0', '--ws-port', '0', '--out', out, ...extra], {
    cwd: fromRoot(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 90 s:\n${output}`)), 90_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /front door\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
  });
  expect(existsSync(path.join(out, 'manifest.json'))).toBe(true);
  return { child, url, out, output: () => output };
}

/** Reads or writes acme's `persisted` item through the front door, with a token from `npm run token` of the running runtime. */
async function item(url: string, method: 'PUT' | 'GET'): Promise<Response> {
  const token = spawnSync(process.execPath, ['--import', 'tsx', fromRoot('local', 'token.ts'), '--tenant', 'acme'], {
    cwd: fromRoot(),
    encoding: 'utf8',
  });
  expect(token.status).toBe(0);
  return fetch(`${url}/tenants/acme/items/persisted`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token.stdout.trim()}` },
    ...(method === 'PUT' && { body: JSON.stringify({ title: 'Persisted', price: { amount: 100, currency: 'EUR' }, stock: 1 }) }),
  });
}

describe('npm start (the CLI)', () => {
  it('starts from nothing (no cdk.out), serves the API, and stops everything on SIGTERM', async () => {
    const { child, url, output } = await startCli();
    expect(output()).toContain('synthesizing the app');
    expect(output()).toContain(`${CONFIG.appName} is running locally`);
    expect(output()).toMatch(/curl -i -X PUT http:\/\/127\.0\.0\.1:\d+\/tenants\/acme\/items\/widget-1 -H "authorization: Bearer \$TOKEN"/);
    expect(output()).toContain('TOKEN=$(npm run -s token -- --tenant acme)');
    // Each cell of the app once.
    const cellsLine = /^ {2}cells +(.+)$/m.exec(output())?.[1];
    expect(cellsLine?.split(', ')).toEqual(CONFIG.cells);
    // Nothing a local user cannot act on: no deploy-time warning about certificates.
    expect(output()).not.toContain('certificateArn');
    // The banner's way to a token: npm run token, against the runtime it just started.
    const token = spawnSync(process.execPath, ['--import', 'tsx', fromRoot('local', 'token.ts'), '--tenant', 'acme'], {
      cwd: fromRoot(),
      encoding: 'utf8',
    });
    expect(token.status).toBe(0);
    const put = await fetch(`${url}/tenants/acme/items/widget-1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.stdout.trim()}` },
      body: JSON.stringify({ title: 'Widget', price: { amount: 1299, currency: 'EUR' }, stock: 10 }),
    });
    expect(put.status).toBe(201);
    expect(CONFIG.cells).toContain(put.headers.get('x-cell-id'));
    // One line for the request, with its cell and tenant; no metrics line without --verbose.
    await eventually(() =>
      expect(output()).toMatch(
        new RegExp(`^\\d\\d:\\d\\d:\\d\\d PUT +/tenants/acme/items/widget-1 201 \\d+ ms ${put.headers.get('x-cell-id')} acme$`, 'm'),
      ),
    );
    expect(output()).not.toContain('"_aws"');

    const dynamoPid = Number(readFileSync(PID_FILE, 'utf8').split(' ')[0]);
    expect(isAlive(dynamoPid)).toBe(true);
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(child.exitCode).toBe(0);
    await waitForExit(dynamoPid);
    expect(existsSync(PID_FILE)).toBe(false);
  });

  it('leaves no DynamoDB Local behind when it is killed outright, and a --persist folder keeps its data into the next start', async () => {
    const persist = mkdtempSync(path.join(tmpdir(), 'item-master-persist-'));
    dirs.push(persist);
    const { child, url, out } = await startCli('--persist', persist);
    const functionsOf = (pid: number) => readdirSync(path.join(out, '.local-functions')).filter((entry) => entry.startsWith(`${pid}-`));
    expect(functionsOf(child.pid!)).toHaveLength(1);
    // The router's instance runs once a request has come; this one writes an item.
    expect((await item(url, 'PUT')).status).toBe(201);
    const dynamoPid = Number(readFileSync(PID_FILE, 'utf8').split(' ')[0]);
    const children = childrenOf(child.pid!);
    expect(children).toContain(dynamoPid);
    expect(children.length).toBeGreaterThanOrEqual(2);
    child.kill('SIGKILL');
    // DynamoDB Local and every function instance go with it.
    for (const pid of children) await waitForExit(pid, 15_000);
    // The next start finds the stale pid file and carries on, and removes the functions the killed run laid out.
    const next = await startCli('--persist', persist, '--out', out);
    expect(functionsOf(child.pid!)).toEqual([]);
    const kept = await item(next.url, 'GET');
    expect([kept.status, ((await kept.json()) as { title: string }).title]).toEqual([200, 'Persisted']);
    next.child.kill('SIGTERM');
    await new Promise((resolve) => next.child.once('exit', resolve));
    // A run that stops removes its own.
    expect(functionsOf(next.child.pid!)).toEqual([]);
    // Two starts from scratch: generous for a loaded machine, not a measure of anything.
  }, 300_000);
});

describe('a DynamoDB Local left running by a run that is gone', () => {
  it('is stopped at the next start', async () => {
    const orphan = await startDynamoDBLocal();
    const goneOwner = spawnSync(process.execPath, ['-e', '0']).pid as number;
    mkdirSync(path.dirname(PID_FILE), { recursive: true });
    writeFileSync(PID_FILE, `${orphan.pid} ${goneOwner}\n`);
    const out = mkdtempSync(path.join(tmpdir(), 'item-master-stale-'));
    dirs.push(out);
    const runtime = await startLocalRuntime({ port: 0, webSocketPort: 0, outdir: path.join(out, 'cdk.out'), functionOutput: () => undefined });
    try {
      await waitForExit(orphan.pid);
      expect(Number(readFileSync(PID_FILE, 'utf8').split(' ')[0])).not.toBe(orphan.pid);
    } finally {
      await runtime.stop();
      await orphan.stop();
    }
  });
});
