import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { LocalFunction } from './assembly.ts';
import { layOutFunction } from './function-layout.ts';
import type { SerializedError, WorkerReply, WorkerRequest } from './function-worker.ts';

/** The function ran past its configured timeout; Lambda stops the instance. */
export class FunctionTimeoutError extends Error {
  constructor(readonly functionName: string, readonly timeoutSeconds: number) {
    super(`${functionName} timed out after ${timeoutSeconds} s`);
    this.name = 'FunctionTimeoutError';
  }
}

/** The handler threw, or the function failed to initialize. */
export class FunctionError extends Error {
  constructor(readonly functionName: string, readonly error: SerializedError) {
    super(`${functionName}: ${error.errorType}: ${error.errorMessage}`);
    this.name = 'FunctionError';
  }
}

interface Instance {
  child: ChildProcess;
  ready: Promise<void>;
  pending: Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>;
}

/**
 * Runs local functions from their bundled assets: one warm instance (a
 * child process) per function, started on first use, initialized once, and
 * replaced after a timeout or a crash, as Lambda replaces an instance.
 */
export class FunctionHost {
  private readonly instances = new Map<string, Instance>();
  /** Instances past a timeout, still finishing other invocations (the host runs invocations concurrently in one instance). */
  private readonly retired = new Set<Instance>();
  private readonly functions = new Map<string, { fn: LocalFunction; env: Record<string, string>; entry: string }>();
  private nextId = 1;

  constructor(
    private readonly workDir: string,
    /** Where the functions' own output goes, line by line, prefixed with the function name. */
    private readonly output: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {}

  /** Registers (or replaces, stopping its instance) a function. */
  deploy(fn: LocalFunction, env: Record<string, string>): void {
    this.stopInstance(fn.functionName);
    const dir = path.join(this.workDir, `${fn.functionName}-${this.nextId++}`);
    mkdirSync(path.dirname(dir), { recursive: true });
    const entry = layOutFunction(dir, fn.codeDir, fn.layerDirs, fn.handler);
    this.functions.set(fn.functionName, { fn, env, entry });
  }

  has(functionName: string): boolean {
    return this.functions.has(functionName);
  }

  async invoke(functionName: string, event: unknown): Promise<unknown> {
    const registered = this.functions.get(functionName);
    if (!registered) throw new Error(`no local function named ${functionName}`);
    const timeoutMs = registered.fn.timeoutSeconds * 1000;
    const deadline = Date.now() + timeoutMs;
    const instance = this.instance(functionName);
    const id = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => instance.pending.set(id, { resolve, reject }));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Lambda discards a timed-out instance; ours may be serving other invocations, which finish first.
        this.retire(functionName, instance);
        reject(new FunctionTimeoutError(functionName, registered.fn.timeoutSeconds));
      }, timeoutMs);
    });
    try {
      await Promise.race([instance.ready, timeout]);
      const request: WorkerRequest = { type: 'invoke', id, event, requestId: randomUUID(), deadline };
      instance.child.send(request);
      return await Promise.race([result, timeout]);
    } finally {
      clearTimeout(timer);
      instance.pending.delete(id);
      if (this.retired.has(instance) && instance.pending.size === 0) instance.child.kill('SIGKILL');
    }
  }

  /** Takes an instance out of service: new invocations start a fresh one; it is stopped once idle. */
  private retire(functionName: string, instance: Instance): void {
    if (this.instances.get(functionName) === instance) this.instances.delete(functionName);
    this.retired.add(instance);
  }

  private instance(functionName: string): Instance {
    const existing = this.instances.get(functionName);
    if (existing) return existing;
    const { fn, env, entry } = this.functions.get(functionName)!;
    const child = fork(path.join(import.meta.dirname, 'function-worker.ts'), [entry, exportName(fn.handler)], {
      env,
      execArgv: ['--import', 'tsx', '--enable-source-maps'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.output(`[${functionName}] ${line}`));
    }
    const pending: Instance['pending'] = new Map();
    let markReady!: () => void;
    let failInit!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failInit = reject;
    });
    ready.catch(() => undefined);
    child.on('message', (reply: WorkerReply) => {
      if (reply.type === 'ready') markReady();
      else if (reply.type === 'init-error') failInit(new FunctionError(functionName, reply.error));
      else if (reply.type === 'result') pending.get(reply.id)?.resolve(reply.result);
      else if (reply.type === 'error') pending.get(reply.id)?.reject(new FunctionError(functionName, reply.error));
    });
    child.on('exit', (code, signal) => {
      if (this.instances.get(functionName)?.child === child) this.instances.delete(functionName);
      this.retired.delete(instance);
      const error = new FunctionError(functionName, {
        errorType: 'Runtime.ExitError',
        errorMessage: `the function's process exited (${signal ?? code})`,
        trace: [],
      });
      failInit(error);
      for (const { reject } of pending.values()) reject(error);
    });
    const instance: Instance = { child, ready, pending };
    this.instances.set(functionName, instance);
    return instance;
  }

  private stopInstance(functionName: string): void {
    const instance = this.instances.get(functionName);
    if (!instance) return;
    this.instances.delete(functionName);
    instance.child.kill('SIGKILL');
  }

  /** Stops every instance and removes the laid-out functions. */
  async stop(): Promise<void> {
    for (const { child } of this.retired) child.kill('SIGKILL');
    const exits = [...this.instances.values(), ...this.retired].map(
      ({ child }) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))),
    );
    for (const name of [...this.instances.keys()]) this.stopInstance(name);
    await Promise.all(exits);
    rmSync(this.workDir, { recursive: true, force: true });
  }

  /** Pids of the running instances (for tests that check nothing is left behind). */
  pids(): number[] {
    return [...this.instances.values(), ...this.retired].map(({ child }) => child.pid as number);
  }

  /** The warm instances by function name (for the bench's CPU accounting). */
  processes(): Array<{ pid: number; functionName: string }> {
    return [...this.instances].map(([functionName, { child }]) => ({ pid: child.pid as number, functionName }));
  }
}

function exportName(handler: string): string {
  return handler.slice(handler.lastIndexOf('.') + 1);
}
