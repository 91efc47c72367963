import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import * as asyncLocal from '../../../layers/shared/src/xray-context.ts';
import { fromRoot } from '../../../lib/paths.ts';

/** cls-hooked itself, found as the X-Ray SDK finds it: the behaviour the layer's module must keep. */
const tracer = createRequire(fromRoot('layers', 'shared', 'package.json')).resolve('@aws-lambda-powertools/tracer');
const xraySdk = createRequire(tracer).resolve('aws-xray-sdk-core');
const clsHooked = createRequire(xraySdk)('cls-hooked/context') as typeof asyncLocal;

type Namespace = ReturnType<typeof asyncLocal.createNamespace>;

describe.each([
  ['cls-hooked', clsHooked],
  ['the layer (AsyncLocalStorage)', asyncLocal],
])('the X-Ray context store: %s', (_name, cls) => {
  const made: string[] = [];
  const namespace = (): Namespace => {
    const name = `test-${randomUUID()}`;
    made.push(name);
    return cls.createNamespace(name);
  };
  afterEach(() => {
    for (const name of made.splice(0)) cls.destroyNamespace(name);
  });

  it('is found by name, and refuses a value outside of any context', () => {
    const ns = namespace();
    expect(cls.getNamespace(ns.name)).toBe(ns);
    expect(ns.get('segment')).toBeUndefined();
    expect(() => ns.set('segment', 'a')).toThrow('No context available');
  });

  it('keeps each run its own value across awaits and timers, and nothing outside', async () => {
    const ns = namespace();
    const seen: string[] = [];
    const request = (value: string, delayMs: number) =>
      new Promise<void>((resolve) =>
        ns.run(() => {
          ns.set('segment', value);
          void (async () => {
            await sleep(delayMs);
            seen.push(`${value}:${String(ns.get('segment'))}`);
            setTimeout(() => {
              seen.push(`${value}:${String(ns.get('segment'))}`);
              resolve();
            }, delayMs);
          })();
        }),
      );
    await Promise.all([request('a', 20), request('b', 5)]);
    expect(seen.sort()).toEqual(['a:a', 'a:a', 'b:b', 'b:b']);
    expect(ns.get('segment')).toBeUndefined();
  });

  it('lets a nested run read its parent and set its own value without changing the parent', () => {
    const ns = namespace();
    ns.run(() => {
      ns.set('segment', 'handler');
      ns.set('service', 'cell-api');
      ns.run(() => {
        expect(ns.get('segment')).toBe('handler');
        ns.set('segment', 'DynamoDB');
        expect(ns.get('segment')).toBe('DynamoDB');
        expect(ns.get('service')).toBe('cell-api');
      });
      expect(ns.get('segment')).toBe('handler');
    });
  });

  it('runs a bound function in the context it was bound in', async () => {
    const ns = namespace();
    let bound: () => unknown = () => undefined;
    ns.run(() => {
      ns.set('segment', 'bound');
      bound = ns.bind(() => ns.get('segment'));
    });
    await sleep(1);
    expect(ns.get('segment')).toBeUndefined();
    expect(bound()).toBe('bound');
  });

  it('keeps a context entered outside of any run for what follows, as the SDK does at init on Lambda', async () => {
    const ns = namespace();
    const context = ns.createContext();
    ns.enter(context);
    try {
      ns.set('segment', 'facade');
      await sleep(1);
      expect(ns.get('segment')).toBe('facade');
      ns.run(() => {
        expect(ns.get('segment')).toBe('facade');
        ns.set('segment', 'subsegment');
      });
      ns.set('segment', 'handler');
      expect(await new Promise((resolve) => setTimeout(() => resolve(ns.get('segment')), 1))).toBe('handler');
    } finally {
      ns.exit(context);
    }
  });
});
