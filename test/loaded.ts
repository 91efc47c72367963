/**
 * `npm run test:loaded [-- <vitest args>]`: the suite while a busy loop keeps
 * every core at 100%, to find the tests that lean on the wall clock. The
 * loops are child processes, stopped by pid however the run ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fromRoot } from '../lib/paths.ts';

const loops: ChildProcess[] = Array.from({ length: availableParallelism() }, () =>
  spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
);
const stopLoops = () => {
  for (const loop of loops) if (loop.exitCode === null && loop.signalCode === null) loop.kill('SIGKILL');
};
process.once('exit', stopLoops);
console.log(`test:loaded: ${loops.length} busy loops (pids ${loops.map((loop) => loop.pid).join(', ')}) hold every core`);

const vitest = spawn(process.execPath, [fromRoot('node_modules/vitest/vitest.mjs'), 'run', ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: fromRoot(),
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => vitest.kill(signal));
vitest.once('exit', (code, signal) => {
  stopLoops();
  process.exit(code ?? (signal ? 1 : 0));
});
