import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoDBLocalVersion } from '../../local/dynamodb-local.ts';
import { javaMajor, PERSIST_MARKER, PrerequisiteError, REQUIRED_JAVA, requireNode, requirePersistDir } from '../../local/prerequisites.ts';
import { fromRoot } from '../../lib/paths.ts';

/**
 * Each missing prerequisite, as a new user meets it: the real entry points
 * (`npm start`'s CLI and the test suite's global setup) run with the
 * prerequisite removed or faked, and must stop with exit code 1 and one
 * line, no stack trace, and nothing left running.
 */
let dir: string;
/** A PATH with node only (and the shell tools a stub needs): no java. */
let nodeOnly: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'item-master-prereq-'));
  nodeOnly = path.join(dir, 'bin');
  mkdirSync(nodeOnly);
  symlinkSync(process.execPath, path.join(nodeOnly, 'node'));
  symlinkSync('/bin/sh', path.join(nodeOnly, 'sh'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A `java` that reports `version` the way `java -version` does, in its own folder. */
function stubJava(version: string, folder = path.join(dir, `java-${version}`)): string {
  mkdirSync(path.join(folder, 'bin'), { recursive: true });
  const java = path.join(folder, 'bin', 'java');
  writeFileSync(java, `#!/bin/sh\necho 'openjdk version "${version}" 2023-01-17' >&2\n`);
  chmodSync(java, 0o755);
  return folder;
}

interface Run {
  readonly code: number | null;
  readonly output: string;
  /** Whether anything of the run's process group is still alive after it exited. */
  readonly leftRunning: boolean;
}

/** Runs a command in its own process group, with `env` over a clean environment; waits for it to exit. */
function run(command: string, args: string[], env: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: fromRoot(),
      env: { HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', async (code) => {
      // A helper it started (tsx's esbuild service) ends when its stdin closes: given a generous while to do so.
      const groupAlive = () => {
        try {
          process.kill(-child.pid!, 0);
          return true;
        } catch {
          return false;
        }
      };
      const deadline = Date.now() + 10_000;
      while (groupAlive() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
      const leftRunning = groupAlive();
      if (leftRunning) process.kill(-child.pid!, 'SIGKILL');
      resolve({ code, output: output.trim(), leftRunning });
    });
  });
}

/** `npm start`'s entry point, run by this Node (the pinned one), with a PATH of our choosing. */
function npmStart(args: string[], env: Record<string, string | undefined>): Promise<Run> {
  return run(process.execPath, ['--import', 'tsx', 'local/cli.ts', '--port', '0', '--ws-port', '0', ...args], env);
}

function expectOneLine(result: Run, message: RegExp): void {
  expect(result.code).toBe(1);
  expect(result.output.split('\n')).toHaveLength(1);
  expect(result.output).toMatch(message);
  expect(result.output).not.toMatch(/\n\s+at |Error:/);
  expect(result.leftRunning).toBe(false);
}

const HOW_TO_INSTALL =
  /Debian\/Ubuntu `sudo apt-get install openjdk-17-jre-headless`, macOS `brew install openjdk@17`, Windows `winget install Microsoft\.OpenJDK\.17`/;

describe('npm start on a machine without what it needs', () => {
  it('without Java: one line naming what is missing and how to install it', async () => {
    const result = await npmStart([], { PATH: nodeOnly });
    expectOneLine(
      result,
      /^npm start: no Java found \(none on PATH, and JAVA_HOME is not set\); DynamoDB Local needs Java 17\+: install Java 17 or later: /,
    );
    expect(result.output).toMatch(HOW_TO_INSTALL);
  });

  it('with Java 11 on PATH: names the version and where it was found', async () => {
    const java11 = stubJava('11.0.21');
    const result = await npmStart([], { PATH: `${path.join(java11, 'bin')}${path.delimiter}${nodeOnly}` });
    expectOneLine(result, new RegExp(`^npm start: Java 11 found at ${path.join(java11, 'bin', 'java')}; DynamoDB Local needs 17\\+: `));
  });

  it("honours JAVA_HOME as Java tools do, before PATH's java", async () => {
    const java8 = stubJava('1.8.0_392');
    const java21 = stubJava('21.0.1');
    const result = await npmStart([], { PATH: `${path.join(java21, 'bin')}${path.delimiter}${nodeOnly}`, JAVA_HOME: java8 });
    expectOneLine(result, new RegExp(`^npm start: Java 8 found at ${path.join(java8, 'bin', 'java')}; DynamoDB Local needs 17\\+`));
    const empty = path.join(dir, 'no-java-home');
    mkdirSync(empty, { recursive: true });
    expectOneLine(await npmStart([], { PATH: nodeOnly, JAVA_HOME: empty }), new RegExp(`^npm start: JAVA_HOME is ${empty}, which has no bin/java`));
  });

  it('with a port in use: names the port and what holds it', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const front = await run(process.execPath, ['--import', 'tsx', 'local/cli.ts', '--port', String(port), '--ws-port', '0'], { PATH: nodeOnly });
      expectOneLine(
        front,
        new RegExp(`^npm start: port ${port} is in use by [^ ]+ \\(pid ${process.pid}\\): stop it, or pass --port <another port>`),
      );
      const live = await run(process.execPath, ['--import', 'tsx', 'local/cli.ts', '--port', '0', '--ws-port', String(port)], { PATH: nodeOnly });
      expectOneLine(live, new RegExp(`^npm start: port ${port} is in use .*pass --ws-port <another port>`));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('where it cannot write the cloud assembly: names the folder and the reason', async () => {
    const file = path.join(dir, 'a-file');
    writeFileSync(file, '');
    const out = path.join(file, 'cdk.out');
    expectOneLine(
      await npmStart(['--out', out], { PATH: nodeOnly }),
      new RegExp(`^npm start: cannot write to ${out} \\((ENOTDIR|EEXIST)\\): the cloud assembly .* goes there; make it writable, or pass --out`),
    );
  });

  it('with a --persist folder of another DynamoDB Local version: says so, and how to go on', async () => {
    const persist = path.join(dir, 'persisted');
    mkdirSync(persist);
    writeFileSync(path.join(persist, 'shared-local-instance.db'), '');
    writeFileSync(path.join(persist, PERSIST_MARKER), '2019-02-07\n');
    expectOneLine(
      await npmStart(['--persist', persist], { PATH: nodeOnly }),
      new RegExp(
        `^npm start: --persist ${persist} holds data of DynamoDB Local 2019-02-07, and this one is ${dynamoDBLocalVersion()}: pass another directory, or delete`,
      ),
    );
  });

  it('on a Node outside the engines range: one line before anything else runs', async () => {
    expect(() => requireNode('20.20.2')).toThrow(PrerequisiteError);
    expect(() => requireNode('20.20.2')).toThrow(/^Node 20\.20\.2 is running this, and the project needs Node >=24 <25: .*npm install/);
    expect(() => requireNode('24.1.0')).not.toThrow();
    // The machine's own Node where it is not the pinned one (Node 20 on these machines).
    const system = ['/usr/bin/node', '/usr/local/bin/node'].find((candidate) => spawnVersion(candidate)?.startsWith('v20'));
    expect(system, 'a system Node 20 to run the entry point with').toBeDefined();
    expectOneLine(
      await run(system!, ['--import', 'tsx', 'local/cli.ts'], { PATH: nodeOnly }),
      /^npm start: Node 20\.\d+\.\d+ is running this, and the project needs Node >=24 <25/,
    );
  });
});

describe('npm test on a machine without Java', () => {
  it('stops once, in its global setup, with the same line', async () => {
    const result = await run(process.execPath, [fromRoot('node_modules/vitest/vitest.mjs'), 'run', 'test/local/environment.test.ts'], {
      PATH: nodeOnly,
    });
    expect(result.code).toBe(1);
    const lines = result.output.split('\n').filter((line) => line.includes('DynamoDB Local needs'));
    expect(lines).toEqual([
      expect.stringMatching(/^npm test: no Java found \(none on PATH, and JAVA_HOME is not set\); DynamoDB Local needs Java 17\+/),
    ]);
    expect(result.output).not.toMatch(/\n\s+at /);
    expect(result.leftRunning).toBe(false);
  });
});

describe('the checks themselves', () => {
  it("reads java -version's major version, old and new style", () => {
    expect(javaMajor('java version "1.8.0_392"')).toBe(8);
    expect(javaMajor('openjdk version "11.0.21" 2023-10-17')).toBe(11);
    expect(javaMajor('openjdk version "17" 2021-09-14')).toBe(17);
    expect(javaMajor('openjdk version "21.0.1" 2023-10-17 LTS')).toBe(21);
    expect(javaMajor('nothing')).toBeUndefined();
    expect(REQUIRED_JAVA).toBe(17);
  });

  it('marks a --persist folder as this version, and takes unmarked data as its own', () => {
    const persist = path.join(dir, 'unmarked');
    mkdirSync(persist);
    writeFileSync(path.join(persist, 'shared-local-instance.db'), '');
    requirePersistDir(persist, '2026-05-28');
    requirePersistDir(persist, '2026-05-28');
    expect(() => requirePersistDir(persist, '2027-01-01')).toThrow(/holds data of DynamoDB Local 2026-05-28, and this one is 2027-01-01/);
  });
});

function spawnVersion(node: string): string | undefined {
  try {
    return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

describe("npm install on the machine's Node.js 20", () => {
  it("prints nothing alarming: no EBADENGINE warning for the tools that run under the project's own Node.js 24", () => {
    // npm judges engines by --node-version: the install a newcomer runs with Node.js 20, without installing anything.
    const run = spawnSync('npm', ['install', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund', '--node-version=20.20.2'], {
      cwd: fromRoot(),
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/EBADENGINE|npm warn/);
  });
});
