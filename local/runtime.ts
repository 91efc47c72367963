import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { fromRoot } from '../lib/paths.ts';
import { cdkJsonContext, parseConfig } from '../lib/config.ts';
import { defaultStateFile, ensureStateDir, isRunning, type LocalRuntimeState } from '../control-plane/local-target.ts';
import { readAssembly, type LocalAssembly } from './assembly.ts';
import { isFresh, synthesize } from './synthesis.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDBLocal, stopStaleDynamoDB, type DynamoDBLocal } from './dynamodb-local.ts';
import { functionEnvironment } from './environment.ts';
import { startFrontDoor } from './front-door-server.ts';
import { FunctionHost } from './function-host.ts';
import { startLocalIssuer, type LocalIssuer } from './issuer.ts';
import { aliasNames, startLambdaApi } from './lambda-api.ts';
import { LocalQueues, serveQueues } from './queues.ts';
import { serveTraffic, TrafficMeter } from './traffic.ts';
import { runDeployTimeCalls } from './deploy-time-calls.ts';
import { startStepFunctionsApi } from './step-functions-api.ts';
import { LocalStepFunctions } from './step-functions.ts';
import { LocalStreams } from './streams.ts';
import { startWebSocketApi, type LocalWebSocketEndpoint } from './websocket-api.ts';
import { createTables } from './tables.ts';
import { resolveValue } from './template-values.ts';
import { startInOrder, type StartStep } from './startup.ts';
import type { AnsweredRequest } from './output-lines.ts';

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
  /** Told of every request the front door answers (`npm start` prints one line each). @default none */
  readonly requestLog?: (answer: AnsweredRequest) => void;
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
 * Where this runtime lays out its functions: beside the cloud assembly it
 * runs, one folder per runtime process. A runtime that was killed outright
 * could not remove its folder; the next start in the same place does.
 */
function functionsDir(outdir: string): string {
  const root = path.join(outdir, '.local-functions');
  mkdirSync(root, { recursive: true });
  for (const entry of readdirSync(root)) {
    const pid = /^(\d+)-\d+$/.exec(entry)?.[1];
    if (pid === undefined || !isRunning(Number(pid))) rmSync(path.join(root, entry), { recursive: true, force: true });
  }
  const dir = path.join(root, `${process.pid}-${++runtimesStarted}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
let runtimesStarted = 0;

/** What a runtime holds while it runs: each start step fills in its part. */
class RuntimeParts {
  assembly!: LocalAssembly;
  dynamo: DynamoDBLocal | undefined;
  dynamoEndpoint!: string;
  dynamoClient!: DynamoDBClient;
  sdkCalls!: Awaited<ReturnType<typeof runDeployTimeCalls>>;
  host!: FunctionHost;
  lambdaApi!: LocalServer;
  issuer: LocalIssuer | undefined;
  queues!: LocalQueues;
  /** The front door's answers per cell, for the console (`GET /_local/traffic`). */
  readonly traffic = new TrafficMeter();
  stepFunctions!: LocalStepFunctions;
  stepFunctionsApi!: LocalServer;
  live: LocalWebSocketEndpoint | undefined;
  streams!: LocalStreams;
  frontDoor!: LocalServer;
  stateFile!: string;
  /** The context the app was last synthesized with (a reload may change it). */
  context: Record<string, unknown>;
  /** Each deployed function's fingerprint (code, layers, handler, timeout, environment) and environment. */
  readonly deployed = new Map<string, string>();
  readonly environments = new Map<string, Record<string, string>>();

  constructor(
    readonly options: LocalRuntimeOptions,
    readonly appName: string,
    readonly outdir: string,
    readonly log: (message: string) => void,
    readonly output: (line: string) => void,
  ) {
    this.context = options.context ?? {};
  }

  /** Where the functions reach the emulated services. */
  endpoints() {
    return {
      dynamodb: this.dynamoEndpoint,
      lambda: this.lambdaApi.url,
      cognitoIdentityProvider: this.issuer?.url,
      stepFunctions: this.stepFunctionsApi.url,
      executeApi: this.live?.origin,
    };
  }

  /** Deploys every function whose fingerprint changed; returns their names. */
  deployFunctions(): string[] {
    const changed: string[] = [];
    for (const fn of this.assembly.functions) {
      const env = functionEnvironment(fn, this.assembly, this.endpoints());
      this.environments.set(fn.functionName, env);
      const fingerprint = JSON.stringify([fn.codeDir, fn.layerDirs, fn.handler, fn.timeoutSeconds, env]);
      if (this.deployed.get(fn.functionName) === fingerprint) continue;
      this.host.deploy(fn, env);
      this.deployed.set(fn.functionName, fingerprint);
      changed.push(fn.functionName);
    }
    return changed;
  }

  /** Tells `npm run cells -- --local` and `npm run token` how to reach this runtime. */
  writeState(): void {
    const config = parseConfig((key) => ({ ...cdkJsonContext(), ...this.context })[key]);
    const state: LocalRuntimeState = {
      pid: process.pid,
      appName: config.appName,
      stage: config.stage,
      url: this.frontDoor.url,
      ...(this.live && { liveUrl: this.live.url }),
      dynamoEndpoint: this.dynamoEndpoint,
      stepFunctionsEndpoint: this.stepFunctionsApi.url,
      region: this.assembly.region,
      ssmParameters: Object.fromEntries(this.assembly.ssmParameters.map((p) => [p.name, resolveValue(p.value, p.stackName, this.assembly)])),
      ...(this.issuer && { tokenUrl: this.issuer.tokenUrl }),
    };
    mkdirSync(path.dirname(this.stateFile), { recursive: true });
    writeFileSync(this.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  }
}

/** A server the runtime started: where it listens, and how to close it. */
interface LocalServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The start order, as data: each step starts one part and says how to stop
 * it, and the runtime stops them in the reverse order (local/startup.ts).
 * So the order says what depends on what: the host runs functions until
 * everything that invokes them (the Step Functions executions, the stream
 * pollers, the front door) has stopped.
 */
const START_ORDER: ReadonlyArray<StartStep<RuntimeParts>> = [
  {
    name: 'the cloud assembly',
    async start(parts) {
      if (parts.options.context || !isFresh(parts.outdir)) {
        parts.log(`synthesizing the app into ${path.relative(process.cwd(), parts.outdir) || parts.outdir} …`);
        synthesize(parts.outdir, parts.options.context);
      } else {
        parts.log('cdk.out is up to date');
      }
      parts.assembly = readAssembly(parts.outdir);
    },
  },
  {
    name: 'DynamoDB Local',
    async start(parts) {
      if (parts.options.dynamoEndpoint) {
        parts.dynamoEndpoint = parts.options.dynamoEndpoint;
        return;
      }
      const pidFile = path.join(ensureStateDir(parts.appName), 'dynamodb-local.pid');
      stopStaleDynamoDB(pidFile, parts.log);
      parts.log('starting DynamoDB Local …');
      if (parts.options.persistDir) mkdirSync(parts.options.persistDir, { recursive: true });
      const dynamo = await startDynamoDBLocal({ dbPath: parts.options.persistDir });
      // Its pid and ours: a later start stops it only if we are gone.
      writeFileSync(pidFile, `${dynamo.pid} ${process.pid}\n`);
      parts.dynamo = dynamo;
      parts.dynamoEndpoint = dynamo.endpoint;
      return async () => {
        await dynamo.stop();
        rmSync(pidFile, { force: true });
      };
    },
  },
  {
    name: "the app's tables and deploy-time calls",
    async start(parts) {
      parts.dynamoClient = new DynamoDBClient({ endpoint: parts.dynamoEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
      await createTables(parts.dynamoClient, parts.assembly.tables);
      parts.sdkCalls = await runDeployTimeCalls(parts.dynamoClient, parts.assembly);
      return async () => parts.dynamoClient.destroy();
    },
  },
  {
    name: 'the function host',
    async start(parts) {
      parts.host = new FunctionHost(functionsDir(parts.outdir), parts.output, {
        maxInstancesPerFunction: parts.options.maxInstancesPerFunction,
      });
      return () => parts.host.stop();
    },
  },
  {
    name: 'the Lambda API',
    async start(parts) {
      parts.lambdaApi = await startLambdaApi(parts.host, 0, aliasNames(parts.assembly.aliases));
      return parts.lambdaApi.close;
    },
  },
  {
    name: 'the token issuer',
    async start(parts) {
      parts.issuer = await startIssuer(parts.assembly);
      return parts.issuer?.close;
    },
  },
  {
    name: 'the queues and Step Functions',
    async start(parts) {
      parts.queues = new LocalQueues();
      parts.queues.define(parts.assembly.queues.map((q) => q.queueName));
      parts.stepFunctions = new LocalStepFunctions({
        dynamodb: parts.dynamoClient,
        invoke: (functionName, payload) => parts.host.invoke(functionName, payload),
        queues: parts.queues,
        log: (line) => parts.output(`[step-functions] ${line}`),
      });
      parts.stepFunctions.load(parts.assembly);
      parts.stepFunctionsApi = await startStepFunctionsApi(parts.stepFunctions);
      // Running executions end as ABORTED, then the API closes.
      return async () => {
        await parts.stepFunctions.stop();
        await parts.stepFunctionsApi.close();
      };
    },
  },
  {
    name: 'the WebSocket API',
    async start(parts) {
      parts.live = await startLive(parts.assembly, parts.host, parts.options.webSocketPort ?? 3001, parts.output);
      return parts.live?.close;
    },
  },
  {
    name: "the app's functions",
    async start(parts) {
      parts.deployFunctions();
    },
  },
  {
    name: 'the stream pollers',
    async start(parts) {
      parts.streams = new LocalStreams({
        dynamodb: parts.dynamoClient,
        dynamoEndpoint: parts.dynamoEndpoint,
        invoke: (functionName, payload) => parts.host.invoke(functionName, payload),
        queues: parts.queues,
        log: (line) => parts.output(`[streams] ${line}`),
      });
      parts.streams.load(parts.assembly);
      // Ready means positioned: a change made once the runtime is up reaches the publishers.
      await parts.streams.drained();
      return () => parts.streams.stop();
    },
  },
  {
    name: 'the front door',
    async start(parts) {
      parts.frontDoor = await startFrontDoor({
        host: parts.host,
        functionName: parts.assembly.frontDoor.functionName,
        multiValueHeaders: parts.assembly.frontDoor.multiValueHeaders,
        port: parts.options.port ?? 3000,
        localRoutes: (req, res) => serveQueues(parts.queues, req, res) || serveTraffic(parts.traffic, req, res),
        onAnswer: (answer) => {
          parts.traffic.record(answer.statusCode, answer.cellId);
          parts.options.requestLog?.(answer);
        },
      });
      return parts.frontDoor.close;
    },
  },
  {
    name: 'the state file',
    async start(parts) {
      parts.stateFile = parts.options.stateFile ?? defaultStateFile(parts.appName);
      parts.writeState();
      return async () => {
        if (existsSync(parts.stateFile) && (JSON.parse(readFileSync(parts.stateFile, 'utf8')) as LocalRuntimeState).pid === process.pid) {
          rmSync(parts.stateFile, { force: true });
        }
      };
    },
  },
];

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
  // The app's name names the state folder and the banner; a reload keeps the name the runtime started with.
  const { appName } = parseConfig((key) => ({ ...cdkJsonContext(), ...options.context })[key]);
  const output = options.functionOutput ?? ((line: string) => process.stdout.write(`${line}\n`));
  const parts = new RuntimeParts(options, appName, options.outdir ?? fromRoot('cdk.out'), log, output);
  const stop = await startInOrder(START_ORDER, parts, log);
  return {
    appName,
    url: parts.frontDoor.url,
    lambdaUrl: parts.lambdaApi.url,
    dynamoEndpoint: parts.dynamoEndpoint,
    issuer: parts.issuer,
    stepFunctions: parts.stepFunctions,
    queues: parts.queues,
    live: parts.live,
    streams: parts.streams,
    get assembly() {
      return parts.assembly;
    },
    async reload(context = options.context) {
      synthesize(parts.outdir, context);
      parts.context = context ?? {};
      parts.assembly = readAssembly(parts.outdir);
      await createTables(parts.dynamoClient, parts.assembly.tables);
      parts.sdkCalls = await runDeployTimeCalls(parts.dynamoClient, parts.assembly, parts.sdkCalls);
      parts.queues.define(parts.assembly.queues.map((q) => q.queueName));
      parts.stepFunctions.load(parts.assembly);
      parts.writeState();
      const changed = parts.deployFunctions();
      parts.streams.load(parts.assembly);
      return changed;
    },
    environment(functionName) {
      const env = parts.environments.get(functionName);
      if (!env) throw new Error(`no local function named ${functionName}`);
      return { ...env };
    },
    pids: () => [...(parts.dynamo ? [parts.dynamo.pid] : []), ...parts.host.pids()],
    processes: () => [
      ...(parts.dynamo ? [{ pid: parts.dynamo.pid, name: 'DynamoDB Local' }] : []),
      ...parts.host.processes().map(({ pid, functionName }) => ({ pid, name: functionName })),
    ],
    stop,
  };
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
