/**
 * Cold-start proxy: fresh Node.js processes that import a laid-out function
 * (its bundle, its layers, the runtime's AWS SDK) with its Lambda
 * environment, and report how long after process start the module had
 * finished its init. An empty handler, measured in the same run, is the floor.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Imports the entry given as the first argument and sends when its init ended
 * (ms since process start) over the IPC channel: a channel of its own, since a
 * function may print anything at init (logs, EMF metrics), as it may on Lambda.
 */
const PROBE = `
const module = await import(process.argv[1]);
if (typeof module.handler !== 'function') throw new Error('the module exports no handler');
const initMs = performance.now();
process.send({ initMs }, () => process.exit(0));
`;

export interface AssetStats {
  /** Everything the asset ships (code and source maps), in KB. */
  readonly kb: number;
  /** The code alone (`.mjs`/`.js`), in KB. */
  readonly codeKb: number;
  readonly files: number;
}

export function assetStats(dir: string): AssetStats {
  let bytes = 0;
  let codeBytes = 0;
  let files = 0;
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const size = statSync(full).size;
        bytes += size;
        files += 1;
        if (/\.(m?js|cjs)$/.test(entry.name)) codeBytes += size;
      }
    }
  };
  walk(dir);
  return { kb: bytes / 1024, codeKb: codeBytes / 1024, files };
}

/** Writes the floor: a module that only exports an empty handler. */
export function writeEmptyHandler(dir: string): string {
  const entry = path.join(dir, 'index.mjs');
  writeFileSync(entry, 'export const handler = async () => ({});\n');
  return entry;
}

/** One fresh process: ms from its start to the end of the module's init. */
export async function probeOnce(entry: string, env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', PROBE, pathToFileURL(entry).href], {
    env,
    cwd: path.dirname(entry),
    // The function's own output is drained and kept only for an error's sake.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let initMs: number | undefined;
  child.on('message', (message: { initMs?: unknown }) => {
    if (typeof message?.initMs === 'number') initMs = message.initMs;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${entry}'s init failed (exit ${code}):\n${output.trim().split('\n').slice(-10).join('\n')}`);
  if (initMs === undefined || !Number.isFinite(initMs) || initMs <= 0) throw new Error(`${entry}: the probe sent no time`);
  return initMs;
}

/**
 * `runs` fresh processes per entry, interleaved (entry A, B, C, A, B, C …)
 * so that a noisy moment on the machine hits every entry alike.
 */
export async function probeInterleaved(
  entries: ReadonlyArray<{ readonly name: string; readonly entry: string; readonly env: Record<string, string> }>,
  runs: number,
  progress: (done: number, total: number) => void = () => undefined,
): Promise<Map<string, number[]>> {
  const samples = new Map(entries.map(({ name }) => [name, [] as number[]]));
  const total = runs * entries.length;
  let done = 0;
  for (let run = 0; run < runs; run++) {
    for (const { name, entry, env } of entries) {
      samples.get(name)?.push(await probeOnce(entry, env));
      progress(++done, total);
    }
  }
  return samples;
}
