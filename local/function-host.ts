import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { LocalFunction } from './assembly.ts';
import { layOutFunction } from './function-layout.ts';
import type { SerializedError, WorkerReply, WorkerRequest } from './function-worker.ts';

/** Instances per function when neither the template nor the caller says otherwise. */
export const DEFAULT_MAX_INSTANCES = 8;

/** Lambda gives an execution environment's init 10 seconds. */
const INIT_LIMIT_MS = 10_000;

/** The function ran past its configured timeout; Lambda stops the instance. */
export class FunctionTimeoutError extends Error {
  constructor(
    readonly functionName: string,
    readonly timeoutSeconds: number,
  ) {
    super(`${functionName} timed out after ${timeoutSeconds} s`);
    this.name = 'FunctionTimeoutError';
  }
}

/** The handler threw, or the function failed to initialize. */
export class FunctionError extends Error {
  constructor(
    readonly functionName: string,
    readonly error: SerializedError,
  ) {
    super(`${functionName}: ${error.errorType}: ${error.errorMessage}`);
    this.name = 'FunctionError';
  }
}

/** Every instance the function's reserved concurrency allows is busy: Lambda's `TooManyRequestsException`. */
export class FunctionThrottledError extends Error {
  constructor(
    readonly functionName: string,
    readonly reservedConcurrency: number,
  ) {
    super(`${functionName} is at its reserved concurrency of ${reservedConcurrency}`);
    this.name = 'TooManyRequestsException';
  }
}

export interface FunctionHostOptions {
  /**
   * Instances a function may run at once on this machine, where its template
   * reserves no concurrency (or reserves more). Past it, an invocation waits
   * for an instance to come free instead of being throttled: the cap is the
   * laptop's, not Lambda's. Fewer instances than requests in flight
   * serialize a chain of functions (the router waits on the cell); more
   * processes each warm their own JIT (`npm run bench`, docs/design/performance.md).
   * @default 8
   */
  readonly maxInstancesPerFunction?: number;
  /**
   * How long an instance may sit idle before it is stopped, as Lambda
   * reclaims idle execution environments.
   * @default 300_000 (5 minutes)
   */
  readonly idleMs?: number;
  /**
   * Arms a deadline: calls `expire` after `ms` unless cancelled. An invocation
   * arms one for its init and one for its run.
   * @default setTimeout
   */
  readonly deadline?: (ms: number, expire: () => void) => { cancel(): void };
}

/** Deadlines on the wall clock. */
function wallClockDeadline(ms: number, expire: () => void): { cancel(): void } {
  const timer = setTimeout(expire, ms);
  return { cancel: () => clearTimeout(timer) };
}

interface Instance {
  readonly functionName: string;
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  /** The invocation in flight, if any: never more than one. */
  current?: { id: number; resolve: (value: unknown) => void; reject: (error: Error) => void };
  idleTimer?: NodeJS.Timeout;
  gone: boolean;
}

interface Pool {
  readonly fn: LocalFunction;
  readonly env: Record<string, string>;
  readonly entry: string;
  readonly instances: Set<Instance>;
  /** Free instances, the most recently used last (Lambda reuses the warmest). */
  readonly idle: Instance[];
  /** Invocations waiting for an instance at the local cap. */
  readonly waiting: Array<{ take: (instance: Instance) => void; fail: (error: Error) => void }>;
}

/**
 * Runs local functions from their bundled assets as Lambda runs them: each
 * function has a pool of instances (child processes), each initialized once
 * and running one invocation at a time. An invocation takes a free instance,
 * or starts a new one (with its init) when all are busy, up to the function's
 * reserved concurrency (past it: throttled) or the local cap (past it: it
 * waits). An instance past its timeout or crashed is discarded, and one idle
 * for `idleMs` is stopped. Per-invocation state in a function's module
 * (request ids, metric dimensions, logger keys) therefore never meets a
 * concurrent request's, as on Lambda.
 */
export class FunctionHost {
  private readonly pools = new Map<string, Pool>();
  private nextId = 1;
  private readonly maxInstances: number;
  private readonly idleMs: number;
  private readonly arm: NonNullable<FunctionHostOptions['deadline']>;

  constructor(
    private readonly workDir: string,
    /** Where the functions' own output goes, line by line, prefixed with the function name. */
    private readonly output: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
    options: FunctionHostOptions = {},
  ) {
    this.maxInstances = options.maxInstancesPerFunction ?? DEFAULT_MAX_INSTANCES;
    this.idleMs = options.idleMs ?? 300_000;
    this.arm = options.deadline ?? wallClockDeadline;
  }

  /** Registers (or replaces, stopping its instances) a function. */
  deploy(fn: LocalFunction, env: Record<string, string>): void {
    this.retirePool(fn.functionName, new Error(`${fn.functionName} was redeployed`));
    const dir = path.join(this.workDir, `${fn.functionName}-${this.nextId++}`);
    mkdirSync(path.dirname(dir), { recursive: true });
    const entry = layOutFunction(dir, fn.codeDir, fn.layerDirs, fn.handler);
    this.pools.set(fn.functionName, { fn, env, entry, instances: new Set(), idle: [], waiting: [] });
  }

  has(functionName: string): boolean {
    return this.pools.has(functionName);
  }

  async invoke(functionName: string, event: unknown): Promise<unknown> {
    const pool = this.pools.get(functionName);
    if (!pool) throw new Error(`no local function named ${functionName}`);
    const instance = await this.acquire(pool);
    const { timeoutSeconds } = pool.fn;
    let timer: { cancel(): void } | undefined;
    // Lambda discards a timed-out instance; ours runs nothing else, so it stops now.
    const deadline = (ms: number) =>
      new Promise<never>((_, reject) => {
        timer = this.arm(ms, () => {
          this.discard(instance);
          reject(new FunctionTimeoutError(functionName, timeoutSeconds));
        });
      });
    try {
      // The init has its own limit, as on Lambda; the function's timeout starts with the invocation.
      // An instance whose init failed is not reused: the next invocation starts a new one.
      const initialized = instance.ready.catch((error: unknown) => {
        this.discard(instance);
        throw error;
      });
      await Promise.race([initialized, deadline(Math.max(INIT_LIMIT_MS, timeoutSeconds * 1000))]);
      timer?.cancel();
      const timeout = deadline(timeoutSeconds * 1000);
      const id = this.nextId++;
      const result = new Promise<unknown>((resolve, reject) => {
        instance.current = { id, resolve, reject };
      });
      const request: WorkerRequest = { type: 'invoke', id, event, requestId: randomUUID(), deadline: Date.now() + timeoutSeconds * 1000 };
      instance.child.send(request);
      return await Promise.race([result, timeout]);
    } finally {
      timer?.cancel();
      instance.current = undefined;
      this.release(pool, instance);
    }
  }

  /** A free instance of the pool: an idle one, a new one, or the next to come free at the local cap. */
  private acquire(pool: Pool): Promise<Instance> {
    const warm = pool.idle.pop();
    if (warm) {
      clearTimeout(warm.idleTimer);
      return Promise.resolve(warm);
    }
    const reserved = pool.fn.reservedConcurrency;
    if (reserved !== undefined && pool.instances.size >= reserved) {
      return Promise.reject(new FunctionThrottledError(pool.fn.functionName, reserved));
    }
    if (pool.instances.size < this.maxInstances) return Promise.resolve(this.start(pool));
    return new Promise((take, fail) => pool.waiting.push({ take, fail }));
  }

  /** Back to the pool after an invocation: to a waiting invocation, or idle until reaped. */
  private release(pool: Pool, instance: Instance): void {
    if (instance.gone) {
      // Its place is free: a waiting invocation gets a new instance.
      const next = pool.waiting.shift();
      if (next && this.pools.get(pool.fn.functionName) === pool) next.take(this.start(pool));
      return;
    }
    const next = pool.waiting.shift();
    if (next) {
      next.take(instance);
      return;
    }
    pool.idle.push(instance);
    instance.idleTimer = setTimeout(() => this.discard(instance), this.idleMs);
    instance.idleTimer.unref();
  }

  private start(pool: Pool): Instance {
    const { fn, env, entry } = pool;
    const functionName = fn.functionName;
    // Node 24 strips the worker's types itself: no TypeScript loader in the function's process, as on Lambda.
    const child = fork(path.join(import.meta.dirname, 'function-worker.ts'), [entry, exportName(fn.handler)], {
      env,
      execArgv: ['--enable-source-maps'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.output(`[${functionName}] ${line}`));
    }
    let markReady!: () => void;
    let failInit!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failInit = reject;
    });
    ready.catch(() => undefined);
    const instance: Instance = { functionName, child, ready, gone: false };
    child.on('message', (reply: WorkerReply) => {
      if (reply.type === 'ready') markReady();
      else if (reply.type === 'init-error') failInit(new FunctionError(functionName, reply.error));
      else if (reply.type === 'result' && instance.current?.id === reply.id) instance.current.resolve(reply.result);
      else if (reply.type === 'error' && instance.current?.id === reply.id) instance.current.reject(new FunctionError(functionName, reply.error));
    });
    child.on('exit', (code, signal) => {
      this.forget(pool, instance);
      const error = new FunctionError(functionName, {
        errorType: 'Runtime.ExitError',
        errorMessage: `the function's process exited (${signal ?? code})`,
        trace: [],
      });
      failInit(error);
      instance.current?.reject(error);
    });
    pool.instances.add(instance);
    return instance;
  }

  /** Stops an instance for good (timed out, idle too long, or its function replaced). */
  private discard(instance: Instance): void {
    const pool = this.pools.get(instance.functionName);
    if (pool) this.forget(pool, instance);
    instance.child.kill('SIGKILL');
  }

  private forget(pool: Pool, instance: Instance): void {
    instance.gone = true;
    clearTimeout(instance.idleTimer);
    pool.instances.delete(instance);
    const at = pool.idle.indexOf(instance);
    if (at >= 0) pool.idle.splice(at, 1);
  }

  private retirePool(functionName: string, reason: Error): void {
    const pool = this.pools.get(functionName);
    if (!pool) return;
    this.pools.delete(functionName);
    for (const waiter of pool.waiting.splice(0)) waiter.fail(reason);
    for (const instance of [...pool.instances]) {
      this.forget(pool, instance);
      instance.child.kill('SIGKILL');
    }
  }

  /** Stops every instance and removes the laid-out functions. */
  async stop(): Promise<void> {
    const children = [...this.pools.values()].flatMap((pool) => [...pool.instances].map((instance) => instance.child));
    const exits = children.map(
      (child) =>
        new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))),
    );
    for (const name of [...this.pools.keys()]) this.retirePool(name, new Error('the function host stopped'));
    await Promise.all(exits);
    rmSync(this.workDir, { recursive: true, force: true });
  }

  /** How many instances the function runs now, busy or idle. */
  instanceCount(functionName: string): number {
    return this.pools.get(functionName)?.instances.size ?? 0;
  }

  /** Pids of the running instances (for tests that check nothing is left behind). */
  pids(): number[] {
    return this.processes().map(({ pid }) => pid);
  }

  /** The running instances by function name (for the bench's CPU accounting). */
  processes(): Array<{ pid: number; functionName: string }> {
    return [...this.pools.values()].flatMap((pool) =>
      [...pool.instances].map((instance) => ({ pid: instance.child.pid as number, functionName: pool.fn.functionName })),
    );
  }
}

function exportName(handler: string): string {
  return handler.slice(handler.lastIndexOf('.') + 1);
}
