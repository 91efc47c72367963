/**
 * One bench run: what users pay for, measured side by side in one run on this
 * machine. `npm run bench` (bench/index.ts) runs it and writes the reports;
 * the bench's smoke test runs it at the smallest sizes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { layOutFunction } from '../local/function-layout.ts';
import { DEFAULT_MAX_INSTANCES } from '../local/function-host.ts';
import { startLocalRuntime } from '../local/runtime.ts';
import { readAssembly } from '../local/assembly.ts';
import { resolveValue } from '../local/template-values.ts';
import { cdkJsonContext, parseConfig } from '../lib/config.ts';
import { DEFAULT_AWS_SDK, DEFAULT_SHARED_CODE } from '../lib/service-function.ts';
import { synthesizeVariants, variantName } from './bundling.ts';
import { assetStats, probeInterleaved, writeEmptyHandler } from './cold-start.ts';
import { cpuSnapshot } from './cpu.ts';
import { machine } from './machine.ts';
import { benchOrders, type Definition } from './orders.ts';
import type { BaselineRow, BenchResults, ColdStartRow, VariantRow } from './report.ts';
import { benchOwnership } from './ownership.ts';
import { benchMoves } from './moves.ts';
import { benchNoisyNeighbour } from './noisy-neighbour.ts';
import { connectLocal } from '../control-plane/connect.ts';
import { QuotaOperations } from '../control-plane/quotas.ts';
import { QUOTA_LIMITS } from '../layers/shared/src/contracts/quotas.ts';
import { routeTenant } from '../routing/routing.ts';
import { stackName } from '../layers/shared/src/contracts/names.ts';
import { benchRouter } from './router.ts';
import { benchRouterRequest } from './router-request.ts';
import { startRecordingProxy, withInitStubs } from './init-stubs.ts';
import { median } from './stats.ts';
import { synthesizeCells, type SynthesisRun } from './synthesis.ts';
import { benchThroughput } from './throughput.ts';

export interface BenchPlan {
  readonly coldStartRuns: number;
  readonly routerDecisions: number;
  readonly routerRequests: number;
  readonly ops: number;
  readonly rounds: number;
  readonly warmup: number;
  readonly concurrency: number;
  readonly orders: number;
  readonly orderConcurrency: number;
  /** Cell counts to synthesize, one fresh process each. */
  readonly cells: readonly number[];
  /** Tenants moved, by size: records each and how many moves of it. */
  readonly moveSizes: ReadonlyArray<{ readonly items: number; readonly moves: number }>;
  /** Seconds of quiet tenants alone, then as long beside a flood of `floodConcurrency` requests in flight. */
  readonly noisySeconds: number;
  readonly floodConcurrency: number;
}

export const PLANS = {
  full: {
    coldStartRuns: 20,
    routerDecisions: 2_000_000,
    routerRequests: 20_000,
    ops: 3_000,
    rounds: 3,
    warmup: 6_000,
    concurrency: 16,
    orders: 200,
    orderConcurrency: 8,
    cells: [1, 4, 16, 32],
    moveSizes: [
      { items: 50, moves: 10 },
      { items: 1_000, moves: 5 },
      { items: 10_000, moves: 3 },
      { items: 100_000, moves: 2 },
    ],
    noisySeconds: 20,
    floodConcurrency: 64,
  },
  quick: {
    coldStartRuns: 5,
    routerDecisions: 500_000,
    routerRequests: 3_000,
    ops: 400,
    rounds: 2,
    warmup: 1_000,
    concurrency: 16,
    orders: 40,
    orderConcurrency: 8,
    cells: [1, 4, 16, 32],
    moveSizes: [
      { items: 50, moves: 3 },
      { items: 2_000, moves: 2 },
    ],
    noisySeconds: 12,
    floodConcurrency: 64,
  },
  /** Every section end to end at its smallest: the test suite's check that the bench runs, not a measurement. */
  smoke: {
    coldStartRuns: 1,
    routerDecisions: 20_000,
    routerRequests: 200,
    ops: 60,
    rounds: 1,
    warmup: 60,
    concurrency: 4,
    orders: 4,
    orderConcurrency: 2,
    cells: [1],
    moveSizes: [{ items: 50, moves: 1 }],
    noisySeconds: 1,
    floodConcurrency: 4,
  },
} as const satisfies Record<string, BenchPlan>;

/** The tenant of the throughput and order runs. */
const BENCH_TENANT = 'bench';

/** The flooding tenant's own quota in the noisy-neighbour run: a fifth of the default. */
export const NOISY_QUOTA = { rate: 20, burst: 40 } as const;

export interface BenchOptions {
  readonly plan: BenchPlan;
  /** The command line the report names. */
  readonly command: string;
  readonly quick: boolean;
  /** Instances each function may run at once in the local runtime. @default the local runtime's default */
  readonly maxInstancesPerFunction?: number;
  /** Another build's cdk.out, cold-started side by side. @default none */
  readonly baseline?: string;
  /** Context overrides for the app under test. @default cdk.json's context */
  readonly context?: Record<string, unknown>;
  /** A DynamoDB Local to use instead of starting one. @default start one */
  readonly dynamoEndpoint?: string;
  /** Progress lines. */
  readonly say: (line: string) => void;
}

/** Runs every section; stops every process it started and removes its files, also when a section fails. */
export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const { plan, say } = options;
  const benchStarted = performance.now();
  const step = (title: string) => say(`\n▶ ${title} (${((performance.now() - benchStarted) / 1000).toFixed(0)} s)`);
  if (Number(process.versions.node.split('.')[0]) !== 24) {
    say(`warning: Node.js ${process.versions.node}; Lambda runs Node.js 24 (npm run bench uses the project's own Node.js 24)`);
  }
  const work = mkdtempSync(path.join(tmpdir(), 'bench-'));
  const cleanup: Array<() => Promise<void>> = [async () => rmSync(work, { recursive: true, force: true })];
  const stopAll = async () => {
    for (const stop of cleanup.reverse()) await stop().catch(() => undefined);
    cleanup.length = 0;
  };
  const interrupted = () => void stopAll().then(() => process.exit(130));
  process.once('SIGINT', interrupted);
  try {
    const config = parseConfig((key) => ({ ...cdkJsonContext(), ...options.context })[key]);

    step(`router: ${plan.routerDecisions.toLocaleString('en-US')} decisions, 1,000,000 tenants over ${config.cells.length} cells`);
    const router = benchRouter(config.cells, plan.routerDecisions);
    step(`ownership: ${plan.routerDecisions.toLocaleString('en-US')} checks of the cell API's ownership record`);
    const ownership = await benchOwnership(config.cells, plan.routerDecisions);

    step(`synthesis: ${plan.cells.join(', ')} cells, one fresh process each`);
    const synthesis: SynthesisRun[] = [];
    for (const cells of plan.cells) {
      synthesis.push(await synthesizeCells(cells));
      say(`  ${cells} cells: ${synthesis.at(-1)?.synthSeconds.toFixed(1)} s`);
    }

    const instancesPerFunction = options.maxInstancesPerFunction ?? DEFAULT_MAX_INSTANCES;
    step('local runtime: synthesizing and starting');
    const runtime = await startLocalRuntime({
      port: 0,
      webSocketPort: 0,
      outdir: path.join(work, 'cdk.out'),
      context: options.context ?? {},
      ...(options.dynamoEndpoint && { dynamoEndpoint: options.dynamoEndpoint }),
      stateFile: path.join(work, 'local-runtime.json'),
      maxInstancesPerFunction: instancesPerFunction,
      log: (line) => say(`  ${line}`),
      functionOutput: () => undefined,
    });
    cleanup.push(() => runtime.stop());
    // The throughput and order runs measure the path, not the quota: their tenant gets one no run reaches (still checked on every request),
    // written before any router instance starts, so each reads it at its init.
    // The local control plane, for the quotas and the noisy-neighbour run's routing.
    const control = connectLocal(path.join(work, 'local-runtime.json'));
    cleanup.push(async () => control.close());
    await new QuotaOperations({ store: control.store, defaultQuota: NOISY_QUOTA, by: 'npm run bench' }).set(BENCH_TENANT, {
      rate: QUOTA_LIMITS.rate.max,
      burst: QUOTA_LIMITS.burst.max,
    });

    step('cold starts: laying out every function and the bundling variants');
    const byCode = new Map<string, (typeof runtime.assembly.functions)[number]>();
    for (const fn of runtime.assembly.functions) if (!byCode.has(fn.codeDir)) byCode.set(fn.codeDir, fn);
    const functions = [...byCode.values()].map((fn) => {
      const env = runtime.environment(fn.functionName);
      const service = env.POWERTOOLS_SERVICE_NAME ?? fn.functionName;
      return { service, fn, env, entry: layOutFunction(path.join(work, 'functions', service), fn.codeDir, fn.layerDirs, fn.handler) };
    });
    const envOf = (service: string) => {
      const found = functions.find((f) => f.service === service);
      if (!found) throw new Error(`no function with the service name ${service}`);
      return found.env;
    };
    const variantServices = [
      { service: 'cell-api', entry: 'functions/cell-api/index.ts' },
      { service: 'router', entry: 'functions/router/index.ts' },
    ];
    const variants = synthesizeVariants(path.join(work, 'variants.out'), variantServices).map((variant, index) => ({
      ...variant,
      name: `${variant.service}: ${variantName(variant)}`,
      entry: layOutFunction(path.join(work, 'variants', String(index)), variant.codeDir, variant.layerDirs),
    }));
    const serviceOfFunction = (fn: { environment: Record<string, unknown> }) => String(fn.environment.POWERTOOLS_SERVICE_NAME);
    // Another build's functions (its cdk.out), laid out the same way and given this run's environment, measured in the same interleaved run.
    const baselineName = (service: string) => `${service} (baseline)`;
    const baselines = options.baseline
      ? readAssembly(path.resolve(options.baseline))
          .functions.filter((fn) => functions.some((f) => f.service === serviceOfFunction(fn)))
          .filter((fn, index, all) => all.findIndex((other) => serviceOfFunction(other) === serviceOfFunction(fn)) === index)
          .map((fn) => {
            const service = serviceOfFunction(fn);
            return { service, fn, entry: layOutFunction(path.join(work, 'baseline', service), fn.codeDir, fn.layerDirs, fn.handler) };
          })
      : [];
    if (options.baseline && baselines.length === 0) throw new Error(`${options.baseline} holds no function of this app`);
    // Init-time reads (the router's map and JWKS) answered from loopback, recorded once from the local runtime.
    const cognitoEndpoint = envOf('router').AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER;
    const stubs = {
      dynamodb: await startRecordingProxy(runtime.dynamoEndpoint),
      ...(cognitoEndpoint && { cognito: await startRecordingProxy(cognitoEndpoint) }),
    };
    cleanup.push(async () => {
      await stubs.dynamodb.close();
      await stubs.cognito?.close();
    });
    const stubbed = (service: string) => withInitStubs(envOf(service), stubs);
    const EMPTY = '(empty handler)';
    const SOURCE_MAPS = ' (source maps at run time)';
    const sourceMapServices = ['router', 'cell-api'];
    const probes = [
      { name: EMPTY, entry: writeEmptyHandler(mkdtempSync(path.join(work, 'empty-'))), env: stubbed('cell-api') },
      ...functions.map(({ service, entry }) => ({ name: service, entry, env: stubbed(service) })),
      ...functions
        .filter(({ service }) => sourceMapServices.includes(service))
        .map(({ service, entry }) => ({
          name: `${service}${SOURCE_MAPS}`,
          entry,
          env: { ...stubbed(service), NODE_OPTIONS: '--enable-source-maps' },
        })),
      ...variants.map(({ name, service, entry }) => ({ name, entry, env: stubbed(service) })),
      ...baselines.map(({ service, entry }) => ({ name: baselineName(service), entry, env: stubbed(service) })),
    ];
    // One unmeasured round: every init read is recorded before the measured ones.
    await probeInterleaved(probes, 1);
    step(`cold starts: ${probes.length} entries × ${plan.coldStartRuns} fresh processes, interleaved`);
    let lastShown = 0;
    const samples = await probeInterleaved(probes, plan.coldStartRuns, (done, total) => {
      if (done === total || performance.now() - lastShown > 5_000) {
        lastShown = performance.now();
        say(`  ${done}/${total} processes`);
      }
    });
    const floorMs = median(samples.get(EMPTY) ?? []);
    const row = (name: string) => {
      const ms = median(samples.get(name) ?? []);
      return { initMs: ms, addedMs: ms - floorMs, ratio: ms / floorMs };
    };
    const layerSizes = new Map<string, number>();
    const layerKb = (dirs: readonly string[]) =>
      dirs.reduce((sum, dir) => {
        if (!layerSizes.has(dir)) layerSizes.set(dir, assetStats(dir).kb);
        return sum + (layerSizes.get(dir) ?? 0);
      }, 0);
    const coldStarts: ColdStartRow[] = functions.map(({ service, fn }) => ({
      service,
      ...assetStats(fn.codeDir),
      layerKb: layerKb(fn.layerDirs),
      ...row(service),
    }));
    const sourceMapRows = sourceMapServices.map((service) => ({ service, without: row(service), with: row(`${service}${SOURCE_MAPS}`) }));
    const initReads = { dynamodb: stubs.dynamodb.counts(), cognito: stubs.cognito?.counts() ?? { replayed: 0, forwarded: 0 } };
    const variantRows: VariantRow[] = variants.map(({ name, service, sharedCode, awsSdk, codeDir, layerDirs }) => ({
      service,
      sharedCode,
      awsSdk,
      ...assetStats(codeDir),
      layerKb: layerKb(layerDirs),
      ...row(name),
    }));

    const baselineRows: BaselineRow[] = baselines.map(({ service, fn }) => {
      const current = coldStarts.find((row) => row.service === service)!;
      const before = { ...assetStats(fn.codeDir), layerKb: layerKb(fn.layerDirs), ...row(baselineName(service)) };
      return { service, before, after: current, initRatio: current.initMs / before.initMs, codeRatio: current.codeKb / before.codeKb };
    });

    const tenantId = BENCH_TENANT;
    const token = (await runtime.issuer!.issue({ tenantId })).access_token;
    const serviceOf = new Map(
      runtime.assembly.functions.map((fn) => [fn.functionName, runtime.environment(fn.functionName).POWERTOOLS_SERVICE_NAME]),
    );
    const cpu = () =>
      cpuSnapshot(
        'local runtime and client',
        runtime.processes().map(({ pid, name }) => ({ pid, name: serviceOf.get(name) ?? name })),
      );
    step('router: the work of one request, in process');
    const routerRequest = await benchRouterRequest(envOf('router'), token, tenantId, plan.routerRequests);
    const target = { url: runtime.url, dynamoEndpoint: runtime.dynamoEndpoint, token, tenantId, cpu, settle: () => runtime.streams.drained() };
    step(`throughput: ${plan.ops} PUTs and ${plan.ops} GETs each way in ${plan.rounds} alternating rounds, ${plan.concurrency} in flight`);
    const throughput = { ...(await benchThroughput(target, plan, (line) => say(`  ${line}`))), instancesPerFunction };

    step(`orders: ${plan.orders} orders, ${plan.orderConcurrency} placed at a time, until every execution completes`);
    // The order saga: a cell's state machine (the control plane's is the move workflow).
    const machine0 = runtime.assembly.stateMachines.find((sm) => sm.stackName === stackName(config, config.cells[0]!));
    if (!machine0) throw new Error('the first cell defines no state machine');
    const definition = JSON.parse(resolveValue(machine0.definition, machine0.stackName, runtime.assembly)) as Definition;
    const orders = await benchOrders(
      target,
      runtime.stepFunctions,
      definition,
      plan.orders,
      plan.orderConcurrency,
      Math.ceil(plan.ops / plan.rounds),
    );

    step(
      `noisy neighbour: one tenant with ${plan.floodConcurrency} requests in flight beside two quiet ones, ${plan.noisySeconds} s before and ${plan.noisySeconds} s during`,
    );
    const routing = await control.store.latestVersion();
    if (!routing) throw new Error('the local control plane holds no map version');
    const noisyNeighbour = await benchNoisyNeighbour(
      {
        url: runtime.url,
        stateFile: path.join(work, 'local-runtime.json'),
        cells: config.cells,
        cellOf: (t) => routeTenant(routing.map, routing.overrides, t).cellId,
        token: async (t) => (await runtime.issuer!.issue({ tenantId: t })).access_token,
      },
      { seconds: plan.noisySeconds, floodConcurrency: plan.floodConcurrency, quota: NOISY_QUOTA, say },
    );

    step(
      `moves by tenant size: ${plan.moveSizes.map((size) => `${size.moves} × ${size.items.toLocaleString('en-US')} records`).join(', ')}, each while it takes writes`,
    );
    const cellTables = Object.fromEntries(
      config.cells.map((cellId) => [
        cellId,
        runtime.assembly.tables.find((t) => t.stackName === stackName(config, cellId) && t.logicalId.startsWith('Data'))!.tableName,
      ]),
    );
    const moves = await benchMoves(
      {
        url: runtime.url,
        dynamoEndpoint: runtime.dynamoEndpoint,
        stateFile: path.join(work, 'local-runtime.json'),
        cellTables,
        token: async (t) => (await runtime.issuer!.issue({ tenantId: t })).access_token,
      },
      { sizes: plan.moveSizes },
      (line) => say(line),
    );

    step('stopping the local runtime');
    await stopAll();

    const results: BenchResults = {
      command: options.command,
      quick: options.quick,
      date: new Date().toISOString(),
      durationSeconds: (performance.now() - benchStarted) / 1000,
      machine: machine(),
      coldStart: {
        runs: plan.coldStartRuns,
        floorMs,
        functions: coldStarts,
        variants: variantRows,
        sourceMaps: sourceMapRows,
        initReads,
        defaults: { awsSdk: DEFAULT_AWS_SDK, sharedCode: DEFAULT_SHARED_CODE },
      },
      ...(options.baseline && { baseline: { dir: options.baseline, functions: baselineRows } }),
      router,
      routerRequest,
      memoryMb: Object.fromEntries(functions.map(({ service, fn }) => [service, fn.memoryMb])),
      ownership,
      throughput,
      orders,
      noisyNeighbour,
      moves,
      synthesis,
    };
    return results;
  } finally {
    process.off('SIGINT', interrupted);
    await stopAll();
  }
}
