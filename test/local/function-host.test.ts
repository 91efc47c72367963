import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalFunction } from '../../local/assembly.ts';
import { FunctionError, FunctionHost, FunctionThrottledError, FunctionTimeoutError, type FunctionHostOptions } from '../../local/function-host.ts';
import { eventually } from '../support/eventually.ts';
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
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the module's own source, a template literal in it
  writeFileSync(path.join(moduleDir, 'index.mjs'), 'export const greet = (who) => `hello ${who}`;\n');
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
    // Deadlines the test expires by hand: nothing here depends on how fast the machine is.
    const armed: Array<{ ms: number; expire: () => void; cancelled: boolean }> = [];
    const deadline = (ms: number, expire: () => void) => {
      const entry = { ms, expire, cancelled: false };
      armed.push(entry);
      return { cancel: () => void (entry.cancelled = true) };
    };
    // The hanging call says it is running by calling this server, which never answers.
    let running!: () => void;
    const started = new Promise<void>((resolve) => (running = resolve));
    const signal = createServer(() => running());
    await new Promise<void>((resolve) => signal.listen(0, '127.0.0.1', resolve));
    const signalUrl = `http://127.0.0.1:${(signal.address() as AddressInfo).port}`;
    try {
      host = new FunctionHost(path.join(root, 'work-3'), () => undefined, { deadline });
      host.deploy(
        asset(
          'slow',
          `let calls = 0; export const handler = async (e) => { calls += 1; if (e.hang) { await fetch(${JSON.stringify(signalUrl)}); } return { calls }; };`,
          3,
        ),
        env(),
      );
      expect(await host.invoke('slow', {})).toEqual({ calls: 1 });
      const [pid] = host.pids();
      const hanging = host.invoke('slow', { hang: true });
      await started;
      // The run's deadline (3 s), armed after the init's and not yet cancelled, expires now.
      const run = armed.filter((entry) => entry.ms === 3_000 && !entry.cancelled);
      expect(run).toHaveLength(1);
      run[0]!.expire();
      await expect(hanging).rejects.toBeInstanceOf(FunctionTimeoutError);
      await expect(hanging).rejects.toMatchObject({
        name: 'FunctionTimeoutError',
        message: 'slow timed out after 3 s',
        functionName: 'slow',
        timeoutSeconds: 3,
      });
      await waitForExit(pid!);
      expect(await host.invoke('slow', {})).toEqual({ calls: 1 });
      expect(host.pids()).toHaveLength(1);
      expect(host.pids()[0]).not.toBe(pid);
    } finally {
      signal.closeAllConnections();
      await new Promise((resolve) => signal.close(resolve));
    }
  });

  it('reports a thrown error and an init failure as function errors', async () => {
    host = new FunctionHost(path.join(root, 'work-4'), () => undefined);
    host.deploy(asset('throws', "export const handler = async () => { throw new TypeError('bad'); };"), env());
    host.deploy(asset('broken', "throw new Error('init failed'); export const handler = async () => 1;"), env());
    await expect(host.invoke('throws', {})).rejects.toMatchObject({
      name: 'FunctionError',
      message: 'throws: TypeError: bad',
      error: { errorType: 'TypeError', errorMessage: 'bad' },
    });
    await expect(host.invoke('broken', {})).rejects.toBeInstanceOf(FunctionError);
    await expect(host.invoke('broken', {})).rejects.toMatchObject({
      name: 'FunctionError',
      message: expect.stringMatching(/^broken: Error: init failed$/),
    });
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

/**
 * Holds each request until `size` of them are waiting, then answers them all:
 * proof that that many invocations are in flight at once, with no clock.
 */
async function startBarrier(size: number) {
  let held: ServerResponse[] = [];
  const server = createServer((_req, res) => {
    held.push(res);
    if (held.length < size) return;
    for (const waiting of held) waiting.end('go');
    held = [];
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      for (const waiting of held) waiting.destroy();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('FunctionHost concurrency, as Lambda runs it', () => {
  // Module state set by one invocation and read back after an await: shared only if two share an instance.
  const stateful = `
    let current; let requestId; let invocations = 0;
    export const handler = async (event, context) => {
      current = event.id; requestId = context.awsRequestId; invocations += 1;
      await fetch(process.env.BARRIER_URL);
      return { id: event.id, seen: current, requestIdKept: requestId === context.awsRequestId, pid: process.pid, invocations };
    };`;

  const barriers: Array<Awaited<ReturnType<typeof startBarrier>>> = [];
  afterEach(async () => {
    for (const barrier of barriers.splice(0)) await barrier.close();
  });

  /** The stateful function on a host of its own, its invocations held until `inFlight` of them wait at the barrier. */
  async function statefulPool(work: string, inFlight: number, options: FunctionHostOptions = {}, fn: Partial<LocalFunction> = {}) {
    const barrier = await startBarrier(inFlight);
    barriers.push(barrier);
    host = new FunctionHost(path.join(root, work), () => undefined, options);
    host.deploy({ ...asset('stateful', stateful), ...fn }, env({ BARRIER_URL: barrier.url }));
    return barrier;
  }

  const invokeAll = async (count: number) =>
    (await Promise.all(Array.from({ length: count }, (_, id) => host.invoke('stateful', { id })))) as Array<Record<string, unknown>>;

  it('runs one invocation per instance: concurrent requests get instances of their own, and no state crosses them', async () => {
    await statefulPool('work-pool-1', 6, { idleMs: 60_000, maxInstancesPerFunction: 8 });
    const results = await invokeAll(6);
    for (const result of results) expect(result).toMatchObject({ seen: result.id, requestIdKept: true, invocations: 1 });
    expect(new Set(results.map((r) => r.pid)).size).toBe(6);
    expect(host.instanceCount('stateful')).toBe(6);
  });

  it('reuses a warm instance for requests one after another', async () => {
    await statefulPool('work-pool-2', 1);
    for (let n = 1; n <= 3; n += 1) expect(await host.invoke('stateful', { id: n })).toMatchObject({ invocations: n });
    expect(host.instanceCount('stateful')).toBe(1);
  });

  it('grows under concurrency and falls back to none when idle', async () => {
    await statefulPool('work-pool-3', 3, { idleMs: 50, maxInstancesPerFunction: 8 });
    const pending = invokeAll(3);
    await eventually(() => expect(host.instanceCount('stateful')).toBe(3), 60_000);
    const pids = host.pids();
    await pending;
    await eventually(() => expect(host.instanceCount('stateful')).toBe(0), 60_000);
    for (const pid of pids) await waitForExit(pid);
  });

  it('queues at the local cap instead of starting more instances', async () => {
    await statefulPool('work-pool-4', 2, { maxInstancesPerFunction: 2 });
    const results = await invokeAll(6);
    for (const result of results) expect(result.seen).toBe(result.id);
    expect(new Set(results.map((r) => r.pid)).size).toBe(2);
    expect(host.instanceCount('stateful')).toBe(2);
  });

  it("throttles past the function's reserved concurrency, as Lambda does", async () => {
    const barrier = await statefulPool('work-pool-5', 2, {}, { reservedConcurrency: 1 });
    const first = host.invoke('stateful', { id: 1 });
    expect(host.instanceCount('stateful')).toBe(1);
    const throttled = host.invoke('stateful', { id: 2 });
    await expect(throttled).rejects.toBeInstanceOf(FunctionThrottledError);
    // The name the Lambda API answers with, as Lambda does.
    await expect(throttled).rejects.toMatchObject({ name: 'TooManyRequestsException', message: 'stateful is at its reserved concurrency of 1' });
    // Let the first one finish: the barrier needs a second caller.
    await fetch(barrier.url);
    expect(await first).toMatchObject({ id: 1 });
  });
});

describe('FunctionHost, instance by instance', () => {
  /** Deadlines that only the test expires. */
  function handDeadlines() {
    const armed: Array<{ ms: number; expire: () => void; cancelled: boolean }> = [];
    const deadline = (ms: number, expire: () => void) => {
      const entry = { ms, expire, cancelled: false };
      armed.push(entry);
      return { cancel: () => void (entry.cancelled = true) };
    };
    return { armed, deadline, live: () => armed.filter((entry) => !entry.cancelled) };
  }
  /** Invocations held at a server until the test lets them go; `arrived` counts those waiting. */
  async function gate() {
    const held: ServerResponse[] = [];
    const waiters: Array<() => void> = [];
    const server = createServer((_req, res) => {
      held.push(res);
      for (const wake of waiters.splice(0)) wake();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      arrived: async (count: number) => {
        while (held.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
      },
      open: () => {
        for (const res of held.splice(0)) res.end('go');
      },
      close: () => {
        for (const res of held.splice(0)) res.destroy();
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }
  const held = `let invocations = 0; export const handler = async (e) => { invocations += 1; if (e.hold) await fetch(process.env.GATE_URL); if (e.crash) process.exit(7); return { invocations, pid: process.pid }; };`;

  it('gives the init the longer of 10 s and the timeout, and the run the timeout', async () => {
    const { armed, deadline } = handDeadlines();
    host = new FunctionHost(path.join(root, 'work-limits'), () => undefined, { deadline });
    host.deploy(asset('short', 'export const handler = async () => 1;', 3), env());
    host.deploy(asset('long', 'export const handler = async () => 1;', 30), env());
    await host.invoke('short', {});
    await host.invoke('long', {});
    expect(armed.map((entry) => entry.ms)).toEqual([10_000, 3_000, 30_000, 30_000]);
    expect(armed.every((entry) => entry.cancelled)).toBe(true);
  });

  it('cancels the wall-clock deadlines of an invocation that finished: its instance outlives its timeout', async () => {
    host = new FunctionHost(path.join(root, 'work-wall'), () => undefined);
    host.deploy(asset('quick', held, 1), env());
    const first = (await host.invoke('quick', {})) as { pid: number };
    // Past the 1 s timeout the first invocation armed: a deadline left running would have stopped the instance by now.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await host.invoke('quick', {})).toEqual({ invocations: 2, pid: first.pid });
  });

  it('never hands out an instance it stopped, even before its process has exited', async () => {
    const { deadline, live } = handDeadlines();
    const signal = await gate();
    try {
      host = new FunctionHost(path.join(root, 'work-stopped'), () => undefined, { deadline, maxInstancesPerFunction: 1 });
      host.deploy(asset('held', held, 3), env({ GATE_URL: signal.url }));
      const first = host.invoke('held', { hold: true });
      await signal.arrived(1);
      // Queued behind it at the cap of one instance.
      const queued = host.invoke('held', {});
      live()
        .find((entry) => entry.ms === 3_000)!
        .expire();
      await expect(first).rejects.toBeInstanceOf(FunctionTimeoutError);
      // The one waiting, and one right after, each run on a fresh instance, not the stopped one.
      expect(await queued).toMatchObject({ invocations: 1 });
      expect(await host.invoke('held', {})).toMatchObject({ invocations: 2 });
    } finally {
      await signal.close();
    }
  });

  it('fails an invocation whose init exits, naming the exit code', async () => {
    const { deadline } = handDeadlines();
    host = new FunctionHost(path.join(root, 'work-exit'), () => undefined, { deadline });
    host.deploy(asset('exits', 'process.exit(3); export const handler = async () => 1;'), env());
    await expect(host.invoke('exits', {})).rejects.toMatchObject({
      name: 'FunctionError',
      message: "exits: Runtime.ExitError: the function's process exited (3)",
      error: { errorType: 'Runtime.ExitError', errorMessage: "the function's process exited (3)", trace: [] },
    });
  });

  it('keeps its idle instances when a busy one crashes, and never reuses one it reaped', async () => {
    const signal = await gate();
    try {
      host = new FunctionHost(path.join(root, 'work-crash'), () => undefined, { idleMs: 60_000 });
      host.deploy(asset('held', held), env({ GATE_URL: signal.url }));
      const busy = host.invoke('held', { hold: true, crash: true });
      await signal.arrived(1);
      const idle = (await host.invoke('held', {})) as { pid: number };
      signal.open();
      await expect(busy).rejects.toMatchObject({ message: "held: Runtime.ExitError: the function's process exited (7)" });
      expect(host.instanceCount('held')).toBe(1);
      expect(await host.invoke('held', {})).toEqual({ invocations: 2, pid: idle.pid });
    } finally {
      await signal.close();
    }
    // Reaped when idle: the next invocation starts a new instance.
    host = new FunctionHost(path.join(root, 'work-reap'), () => undefined, { idleMs: 50 });
    host.deploy(asset('reaped', held), env());
    const { pid } = (await host.invoke('reaped', {})) as { pid: number };
    await waitForExit(pid);
    expect(host.instanceCount('reaped')).toBe(0);
    expect(await host.invoke('reaped', {})).toMatchObject({ invocations: 1 });
  });

  it('does not reap an instance while it runs, however long past idleMs', async () => {
    const signal = await gate();
    try {
      host = new FunctionHost(path.join(root, 'work-busy'), () => undefined, { idleMs: 200 });
      host.deploy(asset('held', held), env({ GATE_URL: signal.url }));
      const { pid } = (await host.invoke('held', {})) as { pid: number };
      const running = host.invoke('held', { hold: true });
      await signal.arrived(1);
      // Longer than idleMs: an idle timer left running from before this invocation would stop it.
      await new Promise((resolve) => setTimeout(resolve, 500));
      signal.open();
      expect(await running).toEqual({ invocations: 2, pid });
    } finally {
      await signal.close();
    }
  });

  it('fails the invocations waiting for an instance when the function is redeployed or the host stops, saying which', async () => {
    const signal = await gate();
    try {
      host = new FunctionHost(path.join(root, 'work-retire'), () => undefined, { maxInstancesPerFunction: 1 });
      const fn = asset('held', held);
      host.deploy(fn, env({ GATE_URL: signal.url }));
      const running = host.invoke('held', { hold: true });
      await signal.arrived(1);
      const waiting = host.invoke('held', {});
      host.deploy(fn, env({ GATE_URL: signal.url }));
      await expect(waiting).rejects.toThrow(new Error('held was redeployed'));
      await expect(running).rejects.toMatchObject({ message: "held: Runtime.ExitError: the function's process exited (SIGKILL)" });

      const again = host.invoke('held', { hold: true });
      await signal.arrived(1);
      // Settled while stop() runs: caught now, checked after.
      const stopped = host.invoke('held', {}).catch((error: unknown) => error);
      const killed = again.catch((error: unknown) => error);
      await host.stop();
      expect(await stopped).toEqual(new Error('the function host stopped'));
      expect(await killed).toBeInstanceOf(FunctionError);
      expect(host.has('held')).toBe(false);
      await expect(host.invoke('held', {})).rejects.toThrow(new Error('no local function named held'));
    } finally {
      await signal.close();
    }
  });

  it("passes each line the function writes, on stdout and stderr, to the output with the function's name", async () => {
    const lines: string[] = [];
    host = new FunctionHost(path.join(root, 'work-output'), (line) => lines.push(line));
    host.deploy(
      asset('talks', "export const handler = async () => { process.stdout.write('to out\\n'); process.stderr.write('to err\\n'); return 1; };"),
      env(),
    );
    await host.invoke('talks', {});
    await eventually(() => expect(lines.sort()).toEqual(['[talks] to err', '[talks] to out']));
    await host.stop();
    // By default, to this process's stdout.
    const written: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      host = new FunctionHost(path.join(root, 'work-stdout'));
      host.deploy(asset('talks', "export const handler = async () => { console.log('hello'); return 1; };"), env());
      await host.invoke('talks', {});
      await eventually(() => expect(written).toContain('[talks] hello\n'));
    } finally {
      write.mockRestore();
    }
  });
});
