import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Runs this Node.js (the project's Node 24) with `args`; resolves to its stdout, or fails with the end of its stderr. */
export async function runNode(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }, what: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(process.execPath, args, { ...options, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { code, stderr } = error as { code?: number | string; stderr?: string };
    throw new Error(`${what} failed (exit ${code}):\n${(stderr ?? '').trim().split('\n').slice(-10).join('\n')}`);
  }
}
