/**
 * `npm start`: the whole service on this machine, no AWS account, no Docker.
 *
 *   npm start -- [--port 3000] [--ws-port 3001] [--persist <dir>] [--watch] [--out <dir>] [--max-instances <n>]
 */
import { watch } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../lib/config.ts';
import { banner } from './banner.ts';
import { fromRoot } from '../lib/paths.ts';
import { startLocalRuntime, type LocalRuntime } from './runtime.ts';

const USAGE = `usage: npm start -- [--port <port>] [--ws-port <port>] [--persist <dir>] [--watch] [--out <dir>] [--max-instances <n>]

  --port <port>     front door on http://127.0.0.1:<port> (default 3000; 0 picks a free port)
  --ws-port <port>  live updates on ws://127.0.0.1:<port>/live (default 3001; 0 picks a free port)
  --persist <dir>   keep DynamoDB data in <dir> between runs (default: in memory)
  --watch           re-bundle and reload functions whose sources change
  --out <dir>       cloud assembly directory (default cdk.out)
  --max-instances <n>
                    instances each function may run at once, one request each
                    (default 8; a function's reserved concurrency, where it
                    has one, caps it too)
  -h, --help        this text`;

function parse() {
  try {
    const { values } = parseArgs({
      options: {
        port: { type: 'string', default: '3000' },
        'ws-port': { type: 'string', default: '3001' },
        persist: { type: 'string' },
        watch: { type: 'boolean', default: false },
        out: { type: 'string' },
        'max-instances': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    const portOf = (option: 'port' | 'ws-port') => {
      const port = Number(values[option]);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--${option} must be a port number, not "${values[option]}"`);
      return port;
    };
    const maxInstances = values['max-instances'] === undefined ? undefined : Number(values['max-instances']);
    if (maxInstances !== undefined && (!Number.isInteger(maxInstances) || maxInstances < 1)) {
      throw new Error(`--max-instances must be a whole number of at least 1, not "${values['max-instances']}"`);
    }
    return { ...values, port: portOf('port'), wsPort: portOf('ws-port'), maxInstances };
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
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

try {
  runtime = await startLocalRuntime({
    port: args.port,
    webSocketPort: args.wsPort,
    persistDir: args.persist,
    outdir: args.out,
    maxInstancesPerFunction: args.maxInstances,
    log: (message) => console.log(`· ${message}`),
  });
} catch (error) {
  if (error instanceof ConfigError) console.error(error.message);
  else if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') console.error(`a port is in use (${args.port} or ${args.wsPort}): pass --port <another> or --ws-port <another>`);
  else console.error(error);
  await shutdown(1);
}
const rt = runtime as LocalRuntime;
console.log(banner(rt, { readySeconds: (performance.now() - started) / 1000, persistDir: args.persist, watching: args.watch }));

if (args.watch) {
  let timer: NodeJS.Timeout | undefined;
  let reloading = Promise.resolve();
  const onChange = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(async () => {
        try {
          const changed = await rt.reload();
          console.log(changed.length ? `· reloaded ${changed.join(', ')}` : '· no function changed');
        } catch (error) {
          console.error(`· reload failed, still serving the previous build: ${(error as Error).message}`);
        }
      });
    }, 300);
  };
  for (const dir of ['functions', 'layers/shared/src', 'lib']) watch(fromRoot(dir), { recursive: true }, onChange);
}
