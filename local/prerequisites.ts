/**
 * What `npm start` and `npm test` need from the machine, checked before they
 * start anything: each missing prerequisite is one line that says what was
 * found and how to get what is needed, never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { fromRoot } from '../lib/paths.ts';

/** A prerequisite the machine lacks; its message is one line. */
export class PrerequisiteError extends Error {
  override name = 'PrerequisiteError';
}

/** The Java the bundled DynamoDB Local needs (DynamoDB Local 3.x requires Java 17 or later). */
export const REQUIRED_JAVA = 17;

const INSTALL_JAVA = `install Java ${REQUIRED_JAVA} or later: Debian/Ubuntu \`sudo apt-get install openjdk-${REQUIRED_JAVA}-jre-headless\`, macOS \`brew install openjdk@${REQUIRED_JAVA}\`, Windows \`winget install Microsoft.OpenJDK.${REQUIRED_JAVA}\` (or set JAVA_HOME to one)`;

/** The java to run: JAVA_HOME's, as Java tools take it, else the one on PATH. */
export function javaCommand(env: NodeJS.ProcessEnv = process.env): string {
  if (env.JAVA_HOME) return path.join(env.JAVA_HOME, 'bin', process.platform === 'win32' ? 'java.exe' : 'java');
  return 'java';
}

/** `java -version`'s major version: `1.8.0_392` is 8, `17.0.9` is 17, `21` is 21. */
export function javaMajor(versionOutput: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?[^"]*"/.exec(versionOutput);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first === 1 && match[2] !== undefined ? Number(match[2]) : first;
}

/** Checks that a Java of at least REQUIRED_JAVA runs; answers the command to run it. */
export function requireJava(env: NodeJS.ProcessEnv = process.env): string {
  const java = javaCommand(env);
  if (env.JAVA_HOME && !existsSync(java)) {
    throw new PrerequisiteError(`JAVA_HOME is ${env.JAVA_HOME}, which has no bin/java; DynamoDB Local needs Java ${REQUIRED_JAVA}+: ${INSTALL_JAVA}`);
  }
  const run = spawnSync(java, ['-version'], { encoding: 'utf8', env, timeout: 30_000 });
  if (run.error) {
    const missing = (run.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new PrerequisiteError(
      missing
        ? `no Java found (none on PATH, and JAVA_HOME is not set); DynamoDB Local needs Java ${REQUIRED_JAVA}+: ${INSTALL_JAVA}`
        : `${java} could not be run (${run.error.message}); DynamoDB Local needs Java ${REQUIRED_JAVA}+: ${INSTALL_JAVA}`,
    );
  }
  const where = env.JAVA_HOME ? java : (whichOnPath('java', env) ?? 'java');
  const major = javaMajor(`${run.stderr}${run.stdout}`);
  if (major === undefined)
    throw new PrerequisiteError(`${where} did not say its version (java -version); DynamoDB Local needs Java ${REQUIRED_JAVA}+: ${INSTALL_JAVA}`);
  if (major < REQUIRED_JAVA) throw new PrerequisiteError(`Java ${major} found at ${where}; DynamoDB Local needs ${REQUIRED_JAVA}+: ${INSTALL_JAVA}`);
  return java;
}

/** The first executable `command` on `env.PATH`, as a shell would find it. */
export function whichOnPath(command: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Checks that this Node satisfies package.json's `engines` range. */
export function requireNode(version: string = process.versions.node): void {
  const range = (JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  if (semver.satisfies(version, range)) return;
  throw new PrerequisiteError(
    `Node ${version} is running this, and the project needs Node ${range}: npm scripts run the Node it pins in node_modules/.bin, so run \`npm install\` (or \`npm ci\`) first; if that Node cannot run on this machine, install Node ${semver.minVersion(range)?.major ?? range} (https://nodejs.org or your package manager)`,
  );
}

/** Checks that a port on 127.0.0.1 is free; names what holds it when it is not, if that can be known. */
export async function requirePort(port: number, option: string): Promise<void> {
  if (port === 0) return;
  const taken = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
  if (!taken) return;
  const holder = portHolder(port);
  throw new PrerequisiteError(
    `port ${port} is in use${holder ? ` by ${holder}` : ''}: stop it, or pass ${option} <another port> (0 picks a free one)`,
  );
}

/** What listens on a TCP port, as `name (pid N)`, where the system tells (Linux: /proc; elsewhere: lsof). */
export function portHolder(port: number): string | undefined {
  try {
    const inodes = new Set<string>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      if (!existsSync(table)) continue;
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        const local = fields[1]?.split(':')[1];
        // State 0A is LISTEN.
        if (local && Number.parseInt(local, 16) === port && fields[3] === '0A' && fields[9]) inodes.add(fields[9]);
      }
    }
    if (inodes.size) {
      for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
        let fds: string[];
        try {
          fds = readdirSync(`/proc/${pid}/fd`);
        } catch {
          continue;
        }
        for (const fd of fds) {
          let target: string;
          try {
            target = readlinkSync(`/proc/${pid}/fd/${fd}`);
          } catch {
            continue;
          }
          const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
          if (inode && inodes.has(inode)) return `${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()} (pid ${pid})`;
        }
      }
    }
  } catch {
    // fall back to lsof
  }
  const lsof = spawnSync('lsof', ['-nP', `-iTCP:${port}`, '-sTCP:LISTEN', '-Fpc'], { encoding: 'utf8' });
  if (lsof.status !== 0) return undefined;
  const pid = /^p(\d+)$/m.exec(lsof.stdout)?.[1];
  const name = /^c(.+)$/m.exec(lsof.stdout)?.[1];
  return pid ? `${name ?? 'a process'} (pid ${pid})` : undefined;
}

/** Checks that a directory can be made and written to. */
export function requireWritable(dir: string, what: string, remedy: string): void {
  const probe = path.join(dir, `.write-check-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new PrerequisiteError(`cannot write to ${dir} (${code}): ${what} goes there; ${remedy}`);
  }
}

/** The file in a `--persist` directory that says which DynamoDB Local wrote its data. */
export const PERSIST_MARKER = '.dynamodb-local-version';

/**
 * Checks that a `--persist` directory holds data of this DynamoDB Local, or
 * none, and marks it as this version's. Data files of another version are
 * not read: DynamoDB Local may fail on them in ways that say nothing of the
 * cause.
 */
export function requirePersistDir(dir: string, version: string): void {
  const marker = path.join(dir, PERSIST_MARKER);
  const hasData = existsSync(dir) && readdirSync(dir).some((name) => name.endsWith('.db'));
  const written = existsSync(marker) ? readFileSync(marker, 'utf8').trim() : undefined;
  // Data without a marker predates the marker: taken as this version's, and marked.
  if (hasData && written !== undefined && written !== version) {
    throw new PrerequisiteError(
      `--persist ${dir} holds data of DynamoDB Local ${written}, and this one is ${version}: pass another directory, or delete ${dir} to start afresh`,
    );
  }
  requireWritable(dir, 'the persisted DynamoDB data', 'make it writable, or pass another --persist directory');
  writeFileSync(marker, `${version}\n`);
}
