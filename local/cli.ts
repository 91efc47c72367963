/**
 * `npm start`: the whole service on this machine, no AWS account, no Docker.
 *
 *   npm start -- [--port 3000] [--ws-port 3001] [--persist <dir>] [--watch] [--out <dir>] [--max-instances <n>] [--verbose]
 */
// First: a Node that cannot run the rest stops here, in one line.
import './preflight-node.ts';
import { InputError, parseCommandLine, portNumber, wholeNumber } from '../lib/cli-input.ts';
import { cdkJsonContext, ConfigError, parseConfig } from '../lib/config.ts';
import { stateDir } from '../control-plane/local-target.ts';
import { dynamoDBLocalVersion } from './dynamodb-local.ts';
import { PrerequisiteError, requireJava, requirePersistDir, requirePort, requireWritable } from './prerequisites.ts';
import { banner } from './banner.ts';
import { fromRoot } from '../lib/paths.ts';
import type { LocalRuntime } from './runtime.ts';
import { functionLine, requestLine } from './output-lines.ts';

const USAGE = `usage: npm start -- [--port <port>] [--ws-port <port>] [--persist <dir>] [--watch] [--out <dir>] [--max-instances <n>] [--verbose]

  --port <port>     front door on http://127.0.0.1:<port> (default 3000; 0 picks a free port)
  --ws-port <port>  live updates on ws://127.0.0.1:<port>/live (default 3001; 0 picks a free port)
  --persist <dir>   keep DynamoDB data in <dir> between runs (default: in memory)
  --watch           re-bundle and reload functions whose sources change
  --out <dir>       cloud assembly directory (default cdk.out)
  --max-instances <n>
                    instances each function may run at once, one request each
                    (default 8; a function's reserved concurrency, where it
                    has one, caps it too)
  --verbose         print the functions' metrics (EMF lines) and their log
                    lines as they wrote them
  -h, --help        this text

Each request is one line: time, method, path, status, ms, cell, tenant.
Function log lines follow, labelled with the function; "!" marks errors.`;

function parse() {
  try {
    const { values } = parseCommandLine(process.argv.slice(2), {
      options: {
        port: { type: 'string', default: '3000' },
        'ws-port': { type: 'string', default: '3001' },
        persist: { type: 'string' },
        watch: { type: 'boolean', default: false },
        out: { type: 'string' },
        'max-instances': { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    });
    const maxInstances = values['max-instances'] === undefined ? undefined : wholeNumber('--max-instances', values['max-instances'], { min: 1 });
    return { ...values, port: portNumber('--port', values.port), wsPort: portNumber('--ws-port', values['ws-port']), maxInstances };
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    console.error(`npm start: ${error.message} (npm start -- --help lists the options)`);
    process.exit(2);
  }
}

const args = parse();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

const started = performance.now();
let runtime: LocalRuntime | undefined;
let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await runtime?.stop();
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
process.on('uncaughtException', (error) => {
  console.error(error);
  void shutdown(1);
});

/** What the machine must offer before anything starts; the first thing missing is one line and exit code 1. */
async function preflight(): Promise<void> {
  const outdir = args.out ?? fromRoot('cdk.out');
  requireWritable(outdir, 'the cloud assembly (the synthesized app)', 'make it writable, or pass --out <another directory>');
  const { appName } = parseConfig((key) => cdkJsonContext()[key]);
  requireWritable(stateDir(appName), "the local runtime's state file", 'make it writable (it is in the project folder)');
  await requirePort(args.port, '--port');
  await requirePort(args.wsPort, '--ws-port');
  if (args.persist) requirePersistDir(args.persist, dynamoDBLocalVersion());
  requireJava();
}

try {
  await preflight();
  // The runtime (the CDK, the function host) loads once the machine is known to have what it needs: a refusal costs no more.
  const { startLocalRuntime } = await import('./runtime.ts');
  runtime = await startLocalRuntime({
    port: args.port,
    webSocketPort: args.wsPort,
    persistDir: args.persist,
    outdir: args.out,
    maxInstancesPerFunction: args.maxInstances,
    log: (message) => console.log(`· ${message}`),
    functionOutput: args.verbose
      ? (line) => console.log(line)
      : (line) => {
          const shown = functionLine(line, { verbose: false });
          if (shown !== undefined) console.log(shown);
        },
    requestLog: (answer) => console.log(requestLine(answer)),
  });
} catch (error) {
  if (error instanceof ConfigError) console.error(error.message);
  else if (error instanceof PrerequisiteError) console.error(`npm start: ${error.message}`);
  else if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    // Taken between the check and the start.
    const port = (error as { port?: number }).port;
    console.error(
      `npm start: port ${port ?? `${args.port} or ${args.wsPort}`} is in use: pass --port <another> or --ws-port <another> (0 picks a free one)`,
    );
  } else console.error(error);
  await shutdown(1);
}
const running = runtime as LocalRuntime;
console.log(banner(running, { readySeconds: (performance.now() - started) / 1000, persistDir: args.persist, watching: args.watch }));

if (args.watch) {
  const { watchAndReload } = await import('./watch.ts');
  watchAndReload(running, {
    dirs: ['functions', 'layers/shared/src', 'lib'].map((dir) => fromRoot(dir)),
    log: (line) => console.log(`· ${line}`),
    warn: (line) => console.error(`· ${line}`),
  });
}
