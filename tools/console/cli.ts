/**
 * `npm run console`: the operator's console on this machine, against the
 * local runtime (`--local`) or an AWS deployment (`--region`, `--stage`),
 * served on 127.0.0.1 only.
 */
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { connectAws, connectLocal, type ControlPlaneConnection } from '../../control-plane/connect.ts';
import { defaultStateFile, readLocalState } from '../../control-plane/local-target.ts';
import { OPERATOR, sdkClientConfig } from '../../layers/shared/src/sdk-timeouts.ts';
import { InputError, parseCommandLine, portNumber, shown } from '../../lib/cli-input.ts';
import { cdkJsonContext, ConfigError, parseConfig } from '../../lib/config.ts';
import { AwsHealth, LocalHealth } from './health.ts';
import { ConsoleModel } from './model.ts';
import { startConsoleServer } from './server.ts';

const USAGE = `usage: npm run console -- [--local | --region <region> --stage <stage>] [--port <n>]

Serves the operator's console on 127.0.0.1 and prints its URL.

options:
  --local               the local runtime (npm start) instead of AWS
  --region <region>     AWS region (default: config region)
  --stage <stage>       dev or prod (default: cdk.json)
  --port <n>            the console's port (default: any free one)
  --local-state <file>  the local runtime's state file (default .<appName>/local-runtime.json)
  -h, --help            this text`;

let values: ReturnType<typeof parse>;
try {
  values = parse();
} catch (error) {
  if (!(error instanceof InputError)) throw error;
  console.error(`npm run console: ${error.message} (npm run console -- --help lists the options)`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

let connection: ControlPlaneConnection | undefined;
try {
  const config = parseConfig((key) => (key === 'stage' && values.stage !== undefined ? values.stage : cdkJsonContext()[key]));
  const by = `${userInfo().username}@${hostname()} (console)`;
  const defaultQuota = { rate: config.tenantRate, burst: config.tenantBurst };
  let model: ConsoleModel;
  if (values.local) {
    const stateFile = path.resolve(values['local-state'] ?? defaultStateFile(config.appName));
    connection = connectLocal(stateFile);
    const state = readLocalState(stateFile);
    model = new ConsoleModel({ connection, health: new LocalHealth(state.url), mode: 'local', appName: state.appName, by, defaultQuota });
  } else {
    const region = values.region ?? config.region;
    connection = await connectAws(config, region);
    model = new ConsoleModel({
      connection,
      health: new AwsHealth(new CloudWatchClient({ region, ...sdkClientConfig(OPERATOR) }), config),
      mode: 'aws',
      appName: config.appName,
      by,
      defaultQuota,
    });
  }
  const server = await startConsoleServer(model, { port: values.port });
  console.log(`console for ${connection.target}: ${server.url}  (Ctrl-C stops it)`);
  const stop = () => {
    void server.close().then(() => {
      connection?.close();
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  console.error(`npm run console: ${error instanceof ConfigError ? error.message : (error as Error).message}`);
  connection?.close();
  process.exit(error instanceof ConfigError ? 2 : 1);
}

function parse() {
  const { values: parsed, positionals } = parseCommandLine(process.argv.slice(2), {
    options: {
      local: { type: 'boolean', default: false },
      region: { type: 'string' },
      stage: { type: 'string' },
      port: { type: 'string' },
      'local-state': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  if (positionals.length) throw new InputError(`unexpected argument ${shown(positionals.join(' '))}`);
  // Checked before anything is reached: bad input costs no AWS call.
  return { ...parsed, port: parsed.port === undefined ? 0 : portNumber('--port', parsed.port) };
}
