import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { watchAndReload } from '../../local/watch.ts';
import { eventually } from '../support/eventually.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A folder tree like the project's, watched, with a runtime stand-in that answers each reload with the next of `answers`. */
function watched(answers: Array<string[] | Error>) {
  const root = mkdtempSync(path.join(tmpdir(), 'item-master-watch-'));
  const dirs = ['functions', 'lib'].map((dir) => path.join(root, dir));
  for (const dir of dirs) mkdirSync(path.join(dir, 'nested'), { recursive: true });
  const logged: string[] = [];
  const warned: string[] = [];
  let reloads = 0;
  const runtime = {
    reload: async () => {
      const answer = answers[reloads++] ?? [];
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  const stop = watchAndReload(runtime, { dirs, log: (line) => logged.push(line), warn: (line) => warned.push(line), settleMs: 10 });
  cleanups.push(stop, () => rmSync(root, { recursive: true, force: true }));
  return { root, logged, warned, reloads: () => reloads, stop };
}

describe('npm run dev (--watch)', () => {
  it('reloads when a file changes in a watched folder, however deep, and says which functions changed', async () => {
    const { root, logged } = watched([['app-cell-1-api', 'app-cell-2-api'], []]);
    writeFileSync(path.join(root, 'functions', 'nested', 'handler.ts'), 'export {};\n');
    await eventually(() => expect(logged).toEqual(['reloaded app-cell-1-api, app-cell-2-api']), 30_000);
    writeFileSync(path.join(root, 'lib', 'stack.ts'), 'export {};\n');
    await eventually(() => expect(logged).toEqual(['reloaded app-cell-1-api, app-cell-2-api', 'no function changed']), 30_000);
  });

  it('keeps watching after a reload fails, saying why', async () => {
    const { root, logged, warned } = watched([new Error('synthesis failed: lib/stack.ts(3,1): error'), ['app-cell-1-api']]);
    writeFileSync(path.join(root, 'lib', 'stack.ts'), 'broken(\n');
    await eventually(
      () => expect(warned).toEqual(['reload failed, still serving the previous build: synthesis failed: lib/stack.ts(3,1): error']),
      30_000,
    );
    writeFileSync(path.join(root, 'lib', 'stack.ts'), 'fixed();\n');
    await eventually(() => expect(logged).toEqual(['reloaded app-cell-1-api']), 30_000);
  });

  it('reloads nothing for a change outside the watched folders, nor once stopped', async () => {
    const { root, reloads, stop } = watched([['app-cell-1-api']]);
    writeFileSync(path.join(root, 'README.md'), 'not watched\n');
    stop();
    writeFileSync(path.join(root, 'functions', 'handler.ts'), 'export {};\n');
    // A change that would reload, in a folder watched by another watcher: once it is seen, the stopped one had its chance too.
    const witness = watched([[]]);
    writeFileSync(path.join(witness.root, 'functions', 'handler.ts'), 'export {};\n');
    await eventually(() => expect(witness.reloads()).toBe(1), 30_000);
    expect(reloads()).toBe(0);
  });
});
