import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFunction } from '../../local/assembly.ts';
import { FunctionError, FunctionHost, FunctionTimeoutError } from '../../local/function-host.ts';
import { isAlive, waitForExit } from '../support/processes.ts';

let root: string;
let host: FunctionHost;

/** A function asset and a layer written to disk, as they would sit in cdk.out. */
function asset(name: string, code: string, timeoutSeconds = 2): LocalFunction {
  const codeDir = path.join(root, `asset-${name}`);
  mkdirSync(codeDir, { recursive: true });
  writeFileSync(path.join(codeDir, 'index.mjs'), code);
  return {
    stackName: 'test',
    logicalId: name,
    functionName: name,
    codeDir,
    layerDirs: [layerDir],
    handler: 'index.handler',
    timeoutSeconds,
    memoryMb: 256,
    environment: {},
  };
}

let layerDir: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'item-master-host-'));
  layerDir = path.join(root, 'layer');
  const moduleDir = path.join(layerDir, 'nodejs', 'node_modules', '@test', 'greeting');
  mkdirSync(moduleDir, { recursive: true });
  writeFileSync(path.join(moduleDir, 'package.json'), JSON.stringify({ name: '@test/greeting', type: 'module', exports: './index.mjs' }));
  writeFileSync(path.join(moduleDir, 'index.mjs'), "export const greet = (who) => `hello ${who}`;\n");
});
afterEach(async () => {
  await host?.stop();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const env = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '', AWS_LAMBDA_FUNCTION_NAME: 'f', ...extra });

describe('FunctionHost', () => {
  it('initializes once per warm instance and passes a Lambda context', async () => {
    host = new FunctionHost(path.join(root, 'work-1'), () => undefined);
    host.deploy(
      asset(
        'counter',
        `import { greet } from '@test/greeting';
         let inits = 0; inits += 1; let calls = 0;
         export const handler = async (event, context) => ({
           inits, calls: ++calls, greeting: greet(event.who), name: context.functionName,
           memory: context.memoryLimitInMB, remaining: context.getRemainingTimeInMillis(),
         });`,
      ),
      env({ AWS_LAMBDA_FUNCTION_NAME: 'counter', AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256' }),
    );
    const first = (await host.invoke('counter', { who: 'cells' })) as Record<string, unknown>;
    const second = (await host.invoke('counter', { who: 'cells' })) as Record<string, unknown>;
    expect(first).toMatchObject({ inits: 1, calls: 1, greeting: 'hello cells', name: 'counter', memory: '256' });
    expect(second).toMatchObject({ inits: 1, calls: 2 });
    expect(first.remaining).toBeGreaterThan(0);
    expect(first.remaining).toBeLessThanOrEqual(2000);
  });

  it('gives each function only its own environment', async () => {
    host = new FunctionHost(path.join(root, 'work-2'), () => undefined);
    const code = 'export const handler = async () => ({ mine: process.env.MINE ?? null, home: process.env.SECRET_OF_PARENT ?? null });';
    process.env.SECRET_OF_PARENT = 'leaked';
    try {
      host.deploy(asset('a', code), env({ MINE: 'a' }));
      host.deploy(asset('b', code), env({ MINE: 'b' }));
      expect(await host.invoke('a', {})).toEqual({ mine: 'a', home: null });
      expect(await host.invoke('b', {})).toEqual({ mine: 'b', home: null });
    } finally {
      delete process.env.SECRET_OF_PARENT;
    }
  });

  it('stops a function past its timeout and starts a fresh instance next time', async () => {
    host = new FunctionHost(path.join(root, 'work-3'), () => undefined);
    host.deploy(
      asset('slow', 'let calls = 0; export const handler = async (e) => { calls += 1; if (e.sleep) await new Promise((r) => setTimeout(r, 5000)); return { calls }; };', 1),
      env(),
    );
    await host.invoke('slow', {});
    const [pid] = host.pids();
    await expect(host.invoke('slow', { sleep: true })).rejects.toBeInstanceOf(FunctionTimeoutError);
    await waitForExit(pid!);
    expect(await host.invoke('slow', {})).toEqual({ calls: 1 });
    expect(host.pids()[0]).not.toBe(pid);
  });

  it('lets the other invocations of a timed-out instance finish before stopping it', async () => {
    host = new FunctionHost(path.join(root, 'work-3b'), () => undefined);
    host.deploy(
      asset('mixed', 'export const handler = async (e) => { await new Promise((r) => setTimeout(r, e.ms)); return e.ms; };', 1),
      env(),
    );
    await host.invoke('mixed', { ms: 0 });
    const [pid] = host.pids();
    const slow = host.invoke('mixed', { ms: 5000 });
    await new Promise((r) => setTimeout(r, 300));
    const finishing = host.invoke('mixed', { ms: 900 });
    await expect(slow).rejects.toBeInstanceOf(FunctionTimeoutError);
    // A new invocation gets a fresh instance while the old one finishes its work.
    expect(await host.invoke('mixed', { ms: 0 })).toBe(0);
    expect(host.pids()).toContain(pid);
    expect(await finishing).toBe(900);
    await waitForExit(pid!);
    expect(host.pids()).not.toContain(pid);
  });

  it('reports a thrown error and an init failure as function errors', async () => {
    host = new FunctionHost(path.join(root, 'work-4'), () => undefined);
    host.deploy(asset('throws', "export const handler = async () => { throw new TypeError('bad'); };"), env());
    host.deploy(asset('broken', "throw new Error('init failed'); export const handler = async () => 1;"), env());
    await expect(host.invoke('throws', {})).rejects.toMatchObject({ error: { errorType: 'TypeError', errorMessage: 'bad' } });
    await expect(host.invoke('broken', {})).rejects.toBeInstanceOf(FunctionError);
  });

  it('leaves no process behind when stopped', async () => {
    host = new FunctionHost(path.join(root, 'work-5'), () => undefined);
    host.deploy(asset('idle', 'export const handler = async () => 1;'), env());
    await host.invoke('idle', {});
    const pids = host.pids();
    expect(pids).toHaveLength(1);
    await host.stop();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  });
});
