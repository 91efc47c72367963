/**
 * The X-Ray SDK's context store (the `cls-hooked/context` module it
 * requires), on AsyncLocalStorage. The layer's bundle puts this module in
 * cls-hooked's place (`lib/shared-layer.ts`).
 *
 * Why: cls-hooked follows every promise with async hooks, destroy hook
 * included, from the moment the SDK is loaded, traced or not. That cost a
 * third of the router's and the cell API's CPU per request (`npm run bench`,
 * docs/design/performance.md). On Node.js 24 AsyncLocalStorage carries the
 * context with the promise itself, with no hook at all.
 *
 * Only what the SDK and Powertools' tracer use is here (and `exit`, for
 * symmetry), with cls-hooked's meaning: a context inherits from the one active when it was made, `run`
 * makes one for a call and what it starts, `enter` outside any `run` sets
 * the process-wide context the SDK enters at init on Lambda.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type Context = Record<string, unknown>;

export class Namespace {
  private readonly storage = new AsyncLocalStorage<Context>();
  /** The context entered outside of any `run`: active wherever no other is. */
  private outer: Context | undefined;

  constructor(readonly name: string) {}

  get active(): Context | null {
    return this.storage.getStore() ?? this.outer ?? null;
  }

  createContext(): Context {
    return Object.create(this.active ?? Object.prototype) as Context;
  }

  set<T>(key: string, value: T): T {
    const context = this.active;
    if (!context) throw new Error('No context available. ns.run() or ns.bind() must be called first.');
    context[key] = value;
    return value;
  }

  get(key: string): unknown {
    return this.active?.[key];
  }

  /** Runs `fn` now in a new context; what it starts keeps that context. */
  run(fn: (context: Context) => void): Context {
    const context = this.createContext();
    this.storage.run(context, fn, context);
    return context;
  }

  /** `fn`, always run in `context` (by default the active one, else a new one). */
  bind<A extends unknown[], R>(fn: (...args: A) => R, context: Context | null = this.active): (...args: A) => R {
    const bound = context ?? this.createContext();
    return (...args: A) => this.storage.run(bound, fn, ...args);
  }

  enter(context: Context): void {
    if (this.storage.getStore() === undefined) this.outer = context;
    else this.storage.enterWith(context);
  }

  exit(context: Context): void {
    if (this.outer === context && this.storage.getStore() === undefined) this.outer = undefined;
  }

  /** Stops the namespace (cls-hooked's `destroyNamespace`). */
  disable(): void {
    this.outer = undefined;
    this.storage.disable();
  }
}

const namespaces = new Map<string, Namespace>();

export function getNamespace(name: string): Namespace | undefined {
  return namespaces.get(name);
}

export function createNamespace(name: string): Namespace {
  const namespace = new Namespace(name);
  namespaces.set(name, namespace);
  return namespace;
}

export function destroyNamespace(name: string): void {
  namespaces.get(name)?.disable();
  namespaces.delete(name);
}
