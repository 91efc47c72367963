import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { fromRoot } from '../lib/paths.ts';
import { cdkJsonContext, parseConfig } from '../lib/config.ts';
import { defaultStateFile, ensureStateDir, type LocalRuntimeState } from '../control-plane/local-target.ts';
import { isFresh, readAssembly, synthesize, type LocalAssembly } from './assembly.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDBLocal, type DynamoDBLocal } from './dynamodb-local.ts';
import { functionEnvironment } from './environment.ts';
import { startFrontDoor } from './front-door-server.ts';
import { FunctionHost } from './function-host.ts';
import { startLocalIssuer, type LocalIssuer } from './issuer.ts';
import { startLambdaApi } from './lambda-api.ts';
import { LocalQueues, serveQueues } from './queues.ts';
import { runDeployTimeCalls } from './deploy-time-calls.ts';
import { startStepFunctionsApi } from './step-functions-api.ts';
import { LocalStepFunctions } from './step-functions.ts';
import { LocalStreams } from './streams.ts';
import { startWebSocketApi, type LocalWebSocketEndpoint } from './websocket-api.ts';
import { createTables } from './tables.ts';
import { resolveValue } from './template-values.ts';

export interface LocalRuntimeOptions {
  /** Front-door port on 127.0.0.1; 0 picks a free one. @default 3000 */
  readonly port?: number;
  /** The WebSocket API's port on 127.0.0.1; 0 picks a free one. @default 3001 */
  readonly webSocketPort?: number;
  /** The cloud assembly directory. @default cdk.out */
  readonly outdir?: string;
  /** Keep DynamoDB data in this directory between runs. @default in memory */
  readonly persistDir?: string;
  /** Use this DynamoDB Local instead of starting one. @default start one */
  readonly dynamoEndpoint?: string;
  /** Context overrides for synthesis (these always re-synthesize). @default none */
  readonly context?: Record<string, unknown>;
  /** Progress messages. @default silent */
  readonly log?: (message: string) => void;
  /** The functions' own output (logs, EMF metrics), one line at a time. @default standard output */
  readonly functionOutput?: (line: string) => void;
  /** Where to tell `npm run cells -- --local` how to reach this runtime. @default .<appName>/local-runtime.json */
  readonly stateFile?: string;
  /** Instances each function may run at once (see FunctionHostOptions). @default 8 */
  readonly maxInstancesPerFunction?: number;
}

export type { LocalRuntimeState } from '../control-plane/local-target.ts';

export interface LocalRuntime {
  /** The app's `appName`, as the runtime was started with it. */
  readonly appName: string;
  readonly url: string;
  readonly lambdaUrl: string;
  readonly dynamoEndpoint: string;
  readonly assembly: LocalAssembly;
  /** Cognito's stand-in: tokens for any tenant, checked by the router as on AWS. */
  readonly issuer: LocalIssuer | undefined;
  /** The app's state machines (the cells' order workflows) and their executions. */
  readonly stepFunctions: LocalStepFunctions;
  /** What the workflows sent to the app's queues; also on `GET /_local/queues`. */
  readonly queues: LocalQueues;
  /** The live-updates WebSocket API and its management API, when the app has one. */
  readonly live: LocalWebSocketEndpoint | undefined;
  /** The stream pollers that feed the cells' publishers. */
  readonly streams: LocalStreams;
  /**
   * Re-synthesizes (with new context overrides, when given) and reloads the
   * functions whose bundle or environment changed; returns their names.
   */
  reload(context?: Record<string, unknown>): Promise<string[]>;
  /** The environment the runtime gives a function (its template's variables, resolved to local endpoints). */
  environment(functionName: string): Record<string, string>;
  /** Pids of every process the runtime started. */
  pids(): number[];
  /** The processes doing the work, named: DynamoDB Local (when the runtime started it) and each warm function. */
  processes(): Array<{ pid: number; name: string }>;
  stop(): Promise<void>;
}


/**
 * The whole service on this machine: the synthesized app's tables in
 * DynamoDB Local, its deploy-time SDK calls (the control plane's first map,
 * each cell's registration), its functions run from their bundled assets,
 * the ALB in front of the router, the Lambda Invoke API the router calls
 * the cells through, an issuer standing in for Cognito, and the cells'
 * order workflows run from their synthesized definitions, with readable
 * queues. Everything listens on 127.0.0.1 only.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const log = options.log ?? (() => undefined);
  const outdir = options.outdir ?? fromRoot('cdk.out');
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => undefined);
    stops.length = 0;
  };
  try {
    // The app's name names the state folder and the banner; a reload keeps the name the runtime started with.
    const { appName } = parseConfig((key) => ({ ...cdkJsonContext(), ...options.context })[key]);
    if (options.context || !isFresh(outdir)) {
      log(`synthesizing the app into ${path.relative(process.cwd(), outdir) || outdir} …`);
      synthesize(outdir, options.context);
    } else {
      log('cdk.out is up to date');
    }
    let assembly = readAssembly(outdir);

    let dynamo: DynamoDBLocal | undefined;
    let dynamoEndpoint = options.dynamoEndpoint;
    if (!dynamoEndpoint) {
      const pidFile = path.join(ensureStateDir(appName), 'dynamodb-local.pid');
      stopStaleDynamoDB(pidFile, log);
      log('starting DynamoDB Local …');
      if (options.persistDir) mkdirSync(options.persistDir, { recursive: true });
      dynamo = await startDynamoDBLocal({ dbPath: options.persistDir });
      // Its pid and ours: a later start stops it only if we are gone.
      writeFileSync(pidFile, `${dynamo.pid} ${process.pid}\n`);
      stops.push(async () => {
        await dynamo?.stop();
        rmSync(pidFile, { force: true });
      });
      dynamoEndpoint = dynamo.endpoint;
    }
    const dynamoClient = new DynamoDBClient({ endpoint: dynamoEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    stops.push(async () => dynamoClient.destroy());
    await createTables(dynamoClient, assembly.tables);
    let sdkCalls = await runDeployTimeCalls(dynamoClient, assembly);

    const output = options.functionOutput ?? ((line: string) => process.stdout.write(`${line}\n`));
    const host = new FunctionHost(mkdtempSync(path.join(tmpdir(), `${appName}-functions-`)), output, {
      maxInstancesPerFunction: options.maxInstancesPerFunction,
    });
    stops.push(() => host.stop());
    const lambdaApi = await startLambdaApi(host);
    stops.push(lambdaApi.close);
    const issuer = await startIssuer(assembly);
    if (issuer) stops.push(issuer.close);
    const queues = new LocalQueues();
    queues.define(assembly.queues.map((q) => q.queueName));
    const stepFunctions = new LocalStepFunctions({
      dynamodb: dynamoClient,
      invoke: (functionName, payload) => host.invoke(functionName, payload),
      queues,
      log: (line) => output(`[step-functions] ${line}`),
    });
    stepFunctions.load(assembly);
    const stepFunctionsApi = await startStepFunctionsApi(stepFunctions);
    stops.push(stepFunctionsApi.close);
    // Runs before the host stops: running executions end as ABORTED, not on a dead function.
    stops.push(() => stepFunctions.stop());
    const live = await startLive(assembly, host, options.webSocketPort ?? 3001, output);
    if (live) stops.push(live.close);
    const endpoints = {
      dynamodb: dynamoEndpoint,
      lambda: lambdaApi.url,
      cognitoIdentityProvider: issuer?.url,
      stepFunctions: stepFunctionsApi.url,
      executeApi: live?.origin,
    };
    const deployed = new Map<string, string>();
    const environments = new Map<string, Record<string, string>>();
    const deployAll = (current: LocalAssembly): string[] => {
      const changed: string[] = [];
      for (const fn of current.functions) {
        const env = functionEnvironment(fn, current, endpoints);
        environments.set(fn.functionName, env);
        const fingerprint = JSON.stringify([fn.codeDir, fn.layerDirs, fn.handler, fn.timeoutSeconds, env]);
        if (deployed.get(fn.functionName) === fingerprint) continue;
        host.deploy(fn, env);
        deployed.set(fn.functionName, fingerprint);
        changed.push(fn.functionName);
      }
      return changed;
    };
    deployAll(assembly);
    const streams = new LocalStreams({
      dynamodb: dynamoClient,
      dynamoEndpoint,
      invoke: (functionName, payload) => host.invoke(functionName, payload),
      queues,
      log: (line) => output(`[streams] ${line}`),
    });
    streams.load(assembly);
    // Ready means positioned: a change made once the runtime is up reaches the publishers.
    await streams.drained();
    // Before the host: a poller mid-batch finishes against live functions.
    stops.push(() => streams.stop());

    const frontDoor = await startFrontDoor({
      host,
      functionName: assembly.frontDoor.functionName,
      multiValueHeaders: assembly.frontDoor.multiValueHeaders,
      port: options.port ?? 3000,
      localRoutes: (req, res) => serveQueues(queues, req, res),
    });
    stops.push(frontDoor.close);

    const stateFile = options.stateFile ?? defaultStateFile(appName);
    let currentContext: Record<string, unknown> = options.context ?? {};
    const writeState = () => {
      const config = parseConfig((key) => ({ ...cdkJsonContext(), ...currentContext })[key]);
      const state: LocalRuntimeState = {
        pid: process.pid,
        appName: config.appName,
        stage: config.stage,
        url: frontDoor.url,
        ...(live && { liveUrl: live.url }),
        dynamoEndpoint: dynamoEndpoint as string,
        region: assembly.region,
        ssmParameters: Object.fromEntries(
          assembly.ssmParameters.map((p) => [p.name, resolveValue(p.value, p.stackName, assembly)]),
        ),
        ...(issuer && { tokenUrl: issuer.tokenUrl }),
      };
      mkdirSync(path.dirname(stateFile), { recursive: true });
      writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    };
    writeState();
    stops.push(async () => {
      if (existsSync(stateFile) && (JSON.parse(readFileSync(stateFile, 'utf8')) as LocalRuntimeState).pid === process.pid) {
        rmSync(stateFile, { force: true });
      }
    });

    return {
      appName,
      url: frontDoor.url,
      lambdaUrl: lambdaApi.url,
      dynamoEndpoint,
      issuer,
      stepFunctions,
      queues,
      live,
      streams,
      get assembly() {
        return assembly;
      },
      async reload(context = options.context) {
        synthesize(outdir, context);
        currentContext = context ?? {};
        assembly = readAssembly(outdir);
        await createTables(dynamoClient, assembly.tables);
        sdkCalls = await runDeployTimeCalls(dynamoClient, assembly, sdkCalls);
        queues.define(assembly.queues.map((q) => q.queueName));
        stepFunctions.load(assembly);
        writeState();
        const changed = deployAll(assembly);
        streams.load(assembly);
        return changed;
      },
      environment(functionName) {
        const env = environments.get(functionName);
        if (!env) throw new Error(`no local function named ${functionName}`);
        return { ...env };
      },
      pids: () => [...(dynamo ? [dynamo.pid] : []), ...host.pids()],
      processes: () => [
        ...(dynamo ? [{ pid: dynamo.pid, name: 'DynamoDB Local' }] : []),
        ...host.processes().map(({ pid, functionName }) => ({ pid, name: functionName })),
      ],
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The local issuer for the app's user pool and its resource server; none
 * when the app declares no pool. A reload keeps it (and its key): the pool's
 * id is stable, so tokens issued before a reload stay valid.
 */
async function startIssuer(assembly: LocalAssembly): Promise<LocalIssuer | undefined> {
  const [pool, ...others] = assembly.userPools;
  if (!pool) return undefined;
  if (others.length > 0) throw new Error('the local runtime supports one Cognito user pool per app');
  const [resourceServer] = pool.resourceServers;
  if (resourceServer === undefined) throw new Error(`the user pool ${pool.logicalId} has no resource server`);
  return startLocalIssuer({ userPoolId: pool.userPoolId, resourceServer });
}

/**
 * The app's WebSocket API (live updates), served on `port`; none when the
 * app declares none. A reload keeps it: its routes' functions are reloaded
 * by name.
 */
async function startLive(
  assembly: LocalAssembly,
  host: FunctionHost,
  port: number,
  output: (line: string) => void,
): Promise<LocalWebSocketEndpoint | undefined> {
  const [api, ...others] = assembly.webSocketApis;
  if (!api) return undefined;
  if (others.length > 0) throw new Error('the local runtime supports one WebSocket API per app');
  return startWebSocketApi({ host, api, region: assembly.region, port, log: (line) => output(`[websocket] ${line}`) });
}

/**
 * A DynamoDB Local that a previous run left behind (its pid file says so, and
 * the run that started it is gone) is stopped.
 */
function stopStaleDynamoDB(pidFile: string, log: (message: string) => void): void {
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
