/** The bench's results as tables: printed with cli-table3, and written as BENCHMARKS.md. */
import Table from 'cli-table3';
import type { AwsSdkSource, SharedCodeSource } from './bundling.ts';
import type { MachineFacts } from './machine.ts';
import type { OrderFigures } from './orders.ts';
import type { OwnershipFigures } from './ownership.ts';
import { BUCKET_CACHE_ENTRIES } from '../functions/router/bucket-cache.ts';
import { WRITE_SETTLE_MS } from '../layers/shared/src/contracts/cell-table.ts';
import { CONTROL_ITEMS, WRITES_PER_SECOND, type MoveFigures } from './moves.ts';
import type { NoisyNeighbourFigures } from './noisy-neighbour.ts';
import type { RouterFigures } from './router.ts';
import type { RouterRequestFigures } from './router-request.ts';
import { ASSUMPTIONS, bulkMoveModel, costModel, PRICES, routerMemoryRows } from './cost.ts';
import { fmt, linearFit, mean } from './stats.ts';
import type { SynthesisRun } from './synthesis.ts';
import type { ThroughputFigures } from './throughput.ts';

export interface InitFigures {
  /** Median ms from process start to the end of the module's init. */
  readonly initMs: number;
  /** Above the empty handler's median. */
  readonly addedMs: number;
  /** Against the empty handler's median. */
  readonly ratio: number;
}

export interface ColdStartRow extends InitFigures {
  readonly service: string;
  readonly kb: number;
  readonly codeKb: number;
  readonly files: number;
  /** The layers it loads, in KB. */
  readonly layerKb: number;
}

export interface VariantRow extends ColdStartRow {
  readonly sharedCode: SharedCodeSource;
  readonly awsSdk: AwsSdkSource;
}

/** One function of this build against the same function of another build, measured in one interleaved run. */
export interface BaselineRow {
  readonly service: string;
  readonly before: Omit<ColdStartRow, 'service'>;
  readonly after: ColdStartRow;
  /** This build's init over the baseline's: below 1 is faster. */
  readonly initRatio: number;
  readonly codeRatio: number;
}

export interface BenchResults {
  readonly command: string;
  readonly quick: boolean;
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: MachineFacts;
  readonly coldStart: {
    readonly runs: number;
    readonly floorMs: number;
    readonly functions: ColdStartRow[];
    readonly variants: VariantRow[];
    /** The same function started with `--enable-source-maps` and without (the default). */
    readonly sourceMaps: Array<{ readonly service: string; readonly without: InitFigures; readonly with: InitFigures }>;
    /** Requests the loopback stubs answered during the cold starts: replayed from memory, and forwarded once. */
    readonly initReads: Record<'dynamodb' | 'cognito', { readonly replayed: number; readonly forwarded: number }>;
    /** `ServiceFunction`'s defaults when the bench ran. */
    readonly defaults: { readonly awsSdk: AwsSdkSource; readonly sharedCode: SharedCodeSource };
  };
  /** Present with `--baseline`: another build's functions, side by side with these. */
  readonly baseline?: { readonly dir: string; readonly functions: BaselineRow[] };
  readonly router: RouterFigures;
  readonly routerRequest: RouterRequestFigures;
  /** Configured memory by function, MB. */
  readonly memoryMb: Record<string, number>;
  readonly ownership: OwnershipFigures;
  readonly noisyNeighbour: NoisyNeighbourFigures;
  readonly moves: MoveFigures;
  /** The local runtime's cap on instances per function during the run. */
  readonly throughput: ThroughputFigures & { readonly instancesPerFunction: number };
  readonly orders: OrderFigures;
  readonly synthesis: SynthesisRun[];
}

interface Section {
  readonly title: string;
  /** What was measured and how, in a sentence or two. */
  readonly how: string;
  readonly head: string[];
  readonly rows: string[][];
  /** Conclusions drawn from the rows. */
  readonly findings: string[];
}

/** Differences smaller than this are within the machine's noise between runs. */
const NOISE_MS = 2;

/** Which source of one dependency the variants favour, by the mean init time of each side. */
export function verdict<K extends 'awsSdk' | 'sharedCode'>(
  variants: readonly VariantRow[],
  key: K,
  current: VariantRow[K],
): { winner: VariantRow[K] | 'neither'; marginMs: number; agrees: boolean } {
  const sides = [...new Set(variants.map((v) => v[key]))];
  const means = sides.map((side) => [side, mean(variants.filter((v) => v[key] === side).map((v) => v.initMs))] as const);
  means.sort((a, b) => a[1] - b[1]);
  const [best, next] = means;
  if (!best || !next) throw new Error(`the variants do not vary ${key}`);
  const marginMs = next[1] - best[1];
  const winner = marginMs < NOISE_MS ? 'neither' : best[0];
  return { winner, marginMs, agrees: winner === 'neither' || winner === current };
}

function sections(r: BenchResults): Section[] {
  const { coldStart, router, ownership, throughput, orders, noisyNeighbour, moves, synthesis } = r;
  const sdk = verdict(coldStart.variants, 'awsSdk', coldStart.defaults.awsSdk);
  const shared = verdict(coldStart.variants, 'sharedCode', coldStart.defaults.sharedCode);
  const fit = linearFit(synthesis.map((run) => [run.cells, run.synthSeconds] as const));
  const largest = synthesis.reduce((a, b) => (b.cells > a.cells ? b : a));
  const cellResources = Math.max(...synthesis.map((run) => run.cellStackResources));
  const initColumns = (row: InitFigures) => [fmt(row.initMs, 1), `+${fmt(row.addedMs, 1)}`, `${fmt(row.ratio, 2)}×`];
  const sizeColumns = (row: ColdStartRow) => [fmt(row.codeKb), fmt(row.kb), String(row.files), row.layerKb ? fmt(row.layerKb) : '–'];
  const path = (figures: ThroughputFigures['put']) => [
    fmt(figures.raw.opsPerSecond),
    fmt(figures.service.opsPerSecond),
    `${fmt(figures.ratio, 2)}`,
    `${fmt(figures.raw.p50Ms, 1)} / ${fmt(figures.raw.p99Ms, 1)}`,
    `${fmt(figures.service.p50Ms, 1)} / ${fmt(figures.service.p99Ms, 1)}`,
  ];
  const sourceFinding = (what: string, v: ReturnType<typeof verdict>, current: string) =>
    v.winner === 'neither'
      ? `${what}: no difference beyond ${NOISE_MS} ms (${fmt(v.marginMs, 1)} ms); the default stays \`${current}\`.`
      : `${what}: \`${v.winner}\` is faster by ${fmt(v.marginMs, 1)} ms on average; the default is \`${current}\`${v.agrees ? '' : ' — the data disagrees with the default'}.`;
  return [
    {
      title: 'Cold start (proxy): every function',
      how: `Median of ${coldStart.runs} fresh Node.js processes per function: ms from process start until the bundle (laid out as Lambda runs it, with its layers and its Lambda environment) has been imported and its init has run, interleaved with an empty handler measured the same way (${fmt(coldStart.floorMs, 1)} ms). Asset sizes include source maps; "code" is the JavaScript alone. What init includes: loading and compiling the bundle and the Node.js modules it imports, and the reads a function makes before its first request (the router: the control plane's registry and map version, and the user pool's JWKS), answered by loopback stubs that replay what the local runtime's DynamoDB Local and token issuer answered once (${fmt(coldStart.initReads.dynamodb.replayed + coldStart.initReads.cognito.replayed)} reads replayed in this run). Not included: Lambda's own start of the execution environment and its runtime client, the network to AWS's endpoints, and TLS (the stubs speak plain HTTP).`,
      head: ['function', 'code KB', 'asset KB', 'files', 'layer KB', 'init ms', 'added ms', 'vs empty'],
      rows: coldStart.functions.map((row) => [row.service, ...sizeColumns(row), ...initColumns(row)]),
      findings: [],
    },
    {
      title: 'Source maps at run time',
      how: "The same bundles started with `NODE_OPTIONS=--enable-source-maps` (Node.js reads each bundle's source map at load) and without it (the default: the maps ship, names are kept in the bundle), in the same interleaved run.",
      head: ['function', 'init ms without', 'init ms with', 'cost of source maps ms'],
      rows: coldStart.sourceMaps.map((row) => [
        row.service,
        fmt(row.without.initMs, 1),
        fmt(row.with.initMs, 1),
        `${row.with.initMs >= row.without.initMs ? '+' : ''}${fmt(row.with.initMs - row.without.initMs, 1)}`,
      ]),
      findings: [],
    },
    {
      title: 'Bundling: where the AWS SDK and the shared code come from',
      how: `The same functions synthesized through \`ServiceFunction\` four ways, measured in the same interleaved run as above.`,
      head: ['function', 'shared code', 'AWS SDK', 'code KB', 'asset KB', 'files', 'layer KB', 'init ms', 'added ms', 'vs empty'],
      rows: coldStart.variants.map((row) => [row.service, row.sharedCode, row.awsSdk, ...sizeColumns(row), ...initColumns(row)]),
      findings: [
        sourceFinding('AWS SDK', sdk, coldStart.defaults.awsSdk),
        sourceFinding('Shared code', shared, coldStart.defaults.sharedCode),
        ...bundlingItsOwn(coldStart.functions, coldStart.defaults.sharedCode),
      ],
    },
    ...(r.baseline
      ? [
          {
            title: 'Against a baseline build',
            how: `Each function of the build in \`${r.baseline.dir}\`, laid out and started the same way, in the same interleaved run as this build's.`,
            head: ['function', 'code KB before', 'code KB now', 'code now / before', 'init ms before', 'init ms now', 'init now / before'],
            rows: r.baseline.functions.map((row) => [
              row.service,
              fmt(row.before.codeKb, 1),
              fmt(row.after.codeKb, 1),
              fmt(row.codeRatio, 3),
              fmt(row.before.initMs, 1),
              fmt(row.after.initMs, 1),
              fmt(row.initRatio, 3),
            ]),
            findings: [],
          },
        ]
      : []),
    {
      title: 'Router',
      how: `\`routeTenant\` (SHA-256 of the tenant id → one of 16,384 buckets → its cell, with 100 pinned tenants) on a warm map, ${fmt(router.decisions)} decisions over 10,000 tenants, hashing each time and then with the router's bucket cache (an LRU of ${fmt(BUCKET_CACHE_ENTRIES)} tenants, every one already in it: a warm instance), alternating twice, the faster round of each; then ${fmt(router.tenants)} random tenant ids spread over the configured cells.`,
      head: [
        'cells',
        'ns per decision (hashing)',
        'ns per decision (cached)',
        'cached ÷ hashing',
        'decisions per second (cached)',
        'tenants per cell',
        'max / mean',
      ],
      rows: [
        [
          String(router.cells.length),
          fmt(router.nsPerDecision),
          fmt(router.nsPerCachedDecision),
          fmt(router.nsPerCachedDecision / router.nsPerDecision, 2),
          fmt(1e9 / router.nsPerCachedDecision),
          Object.entries(router.perCell)
            .map(([cell, count]) => `${cell}: ${fmt(count)}`)
            .join(', '),
          fmt(router.maxOverMean, 4),
        ],
      ],
      findings: [],
    },
    {
      title: 'Router: its own work per request',
      how: `In this process, ${fmt(r.routerRequest.iterations)} times each after a warm-up: the token check of a tenant's access token (signature verified every time, and remembered until it expires), the metrics flush of the router's three metrics with their dimension (one EMF line, written to /dev/null), the whole of \`routeRequest\` with the token remembered and a cell that answers at once, and the whole of it for a request refused over its tenant's quota (429, no cell invoked). The rest of the router's CPU in the throughput run below is Node.js's HTTP and the hop to the cell.`,
      head: ['token verified µs', 'token remembered µs', 'remembered ÷ verified', 'metrics flush µs', 'routeRequest µs', 'refused over quota µs'],
      rows: [
        [
          fmt(r.routerRequest.verifyUs, 1),
          fmt(r.routerRequest.cachedVerifyUs, 2),
          fmt(r.routerRequest.cachedVerifyUs / r.routerRequest.verifyUs, 3),
          fmt(r.routerRequest.flushUs, 1),
          fmt(r.routerRequest.routeRequestUs, 1),
          fmt(r.routerRequest.refusedRequestUs, 1),
        ],
      ],
      findings: [],
    },
    {
      title: 'Ownership check (the cell API, every request for a tenant)',
      how: `\`OwnershipCache.check\`: SHA-256 of the tenant id → its bucket → the cell the ownership record gives it, on a record held within its lease (${fmt(ownership.leaseMs)} ms), ${fmt(ownership.checks)} checks; the record's reads per request over 10 s of requests to one instance (one read per lease, whatever the rate); and the share of requests whose writes go to a move's change journal (a write more per record), with no move in the cell and with one of its tenants moving, over 10,000 other tenants: the journal costs the normal path nothing.`,
      head: [
        'ns per check',
        'vs a routing decision',
        'reads per request at 1,000/s',
        'reads per request at 1/s',
        'journaled: no move / another tenant moving',
      ],
      rows: [
        [
          fmt(ownership.nsPerCheck),
          `${fmt(ownership.nsPerCheck / router.nsPerDecision, 2)}×`,
          fmt(ownership.readsPerRequest.at1000PerSecond, 4),
          fmt(ownership.readsPerRequest.at1PerSecond, 2),
          `${fmt(ownership.journaledPerRequest.noMove, 2)} / ${fmt(ownership.journaledPerRequest.otherTenantMoving, 2)}`,
        ],
      ],
      findings: [],
    },
    {
      title: 'Noisy neighbour',
      how: `Through the local runtime: two quiet tenants, one in the flooding tenant's cell and one in another, each send one GET at a time for ${fmt(noisyNeighbour.seconds)} s alone, then ${fmt(noisyNeighbour.seconds)} s while one tenant keeps ${fmt(noisyNeighbour.floodConcurrency)} GETs in flight under its own quota of ${fmt(noisyNeighbour.quota.rate)} requests a second (bursts of ${fmt(noisyNeighbour.quota.burst)}), which the router enforces before any cell. The goal: each quiet tenant's p99 during the flood at most 2× its p99 before, and its rate at least 0.8× (the last two columns). The router's CPU per refused request is in "Router: its own work per request" above.`,
      head: [
        'quiet tenant',
        'before p50 / p99 ms',
        'during p50 / p99 ms',
        'before /s',
        'during /s',
        'not 200 (during)',
        'p99 during ÷ before',
        'rate during ÷ before',
      ],
      rows: noisyNeighbour.quiet.map(({ where, before, during }) => [
        where,
        `${fmt(before.p50Ms, 1)} / ${fmt(before.p99Ms, 1)}`,
        `${fmt(during.p50Ms, 1)} / ${fmt(during.p99Ms, 1)}`,
        fmt(before.perSecond, 1),
        fmt(during.perSecond, 1),
        fmt(during.failed),
        fmt(during.p99Ms / before.p99Ms, 2),
        fmt(during.perSecond / before.perSecond, 2),
      ]),
      findings: [
        `The flooding tenant: ${fmt(noisyNeighbour.flood.answers)} answers, ${fmt(noisyNeighbour.flood.refused)} refused with 429, ${fmt(noisyNeighbour.flood.admitted)} served, ${fmt(noisyNeighbour.flood.other)} other.`,
        ...noisyNeighbour.quiet.map(({ where, before, during }) => {
          const met = during.p99Ms <= 2 * before.p99Ms && during.perSecond >= 0.8 * before.perSecond;
          return `Quiet tenant, ${where}: goal ${met ? 'met' : 'not met'} (p99 ${fmt(during.p99Ms / before.p99Ms, 2)}× before, rate ${fmt(during.perSecond / before.perSecond, 2)}× before).`;
        }),
      ],
    },
    {
      title: 'Moves by tenant size',
      how: `Tenants of each size moved back and forth by the local runtime's move workflow (the mover function stepped by the synthesized state machine, as \`cells move --local\` starts them), each move while a writer PUTs to the tenant through the front door, ${WRITES_PER_SECOND} a second. "raw load" is a BatchWriteItem load of the same records (up to 10,000 of them, under another key; 25 records a call, 8 calls at once, as the clone writes) into the table the move copies to, just before each move; "copy" is the clone step's rate, at the mover's default of 4 ranges of keys at once (moveCopySegments); both are medians over the moves, and "copy ÷ raw" is the median of each move's ratio. "reads per change" is what the catch-ups from the change journal read per journal entry. The fenced window is from the fence to the flip (writes refused meanwhile get 503 with Retry-After), including the ${WRITE_SETTLE_MS} ms the final catch-up waits for acknowledged writes to land; "p99 ÷ ${CONTROL_ITEMS} records beside" divides it by the fenced window's p99 of a ${CONTROL_ITEMS}-record tenant moved the same way right after each of these moves (DynamoDB Local slows down as a run goes on, so a small tenant's window measured at the start is no yardstick for a big one's at the end); "reads in the fence" counts the records it read (median). "move s" is from the move's start to its flip, which is when \`cells move\` returns.`,
      head: [
        'records',
        'moves',
        'raw load rec/s',
        'copy rec/s',
        'copy ÷ raw',
        'reads per change',
        'fenced ms p50 / p99',
        `p99 ÷ ${CONTROL_ITEMS} records beside`,
        'reads in the fence',
        'move s',
        'writes (refused)',
      ],
      rows: moves.bySize.map((size) => [
        fmt(size.items),
        fmt(size.moves),
        fmt(size.rawRecordsPerSecond),
        fmt(size.cloneRecordsPerSecond),
        fmt(size.copyToRaw, 2),
        fmt(size.readsPerChange, 1),
        `${fmt(size.fencedP50Ms)} / ${fmt(size.fencedP99Ms)}`,
        fmt(size.fencedP99Ms / size.controlFencedP99Ms, 2),
        fmt(size.fencedReads),
        fmt(size.moveSeconds, 1),
        `${fmt(size.acknowledgedWrites)} (${fmt(size.refusedWrites)})`,
      ]),
      findings: movesFindings(moves),
    },
    {
      title: 'Moving a billion records',
      how: `A model, not a measurement: one billion records of 1 KB or less moved between two cells' on-demand tables, at the write rate the target table gives the copy (the rest of its throughput stays with live traffic; a table's default quota is 40,000 write units a second). The clone reads each record once (a consistent Query, a quarter of a read unit) and writes it once; the catch-up's whole-tenant pass, before the fence, reads both cells once; forget, after the grace period, deletes each record once. A segment (a range of keys) does a page of 1,000 records in 6 round trips of ${ASSUMPTIONS.dynamoCallMs} ms; "segments" is the moveCopySegments that reaches the rate. The fenced window does not appear: it follows the writes of its last seconds, not the records (the table above). Prices: DynamoDB on-demand, Lambda Arm at 1,024 MB.`,
      head: ['copy writes/s', 'segments', 'clone h', 'catch-up pass h', 'forget h', 'DynamoDB USD', 'mover USD'],
      rows: bulkMoveModel(1e9, [5_000, 10_000, 20_000, 40_000]).map((row) => [
        fmt(row.writesPerSecond),
        fmt(row.segments),
        fmt(row.cloneHours, 1),
        fmt(row.catchUpHours, 1),
        fmt(row.forgetHours, 1),
        fmt(row.dynamoUsd),
        fmt(row.moverUsd, 2),
      ]),
      findings: [
        "The table, not the mover, bounds the copy: one mover invocation with a few segments outruns a table's whole default write quota, so the segments stay in one step, checkpointed each, and the parallelism is the moveCopySegments setting. A copy that must outrun one invocation would hand the same segments to a Step Functions Distributed Map; nothing else changes.",
        'The cost does not depend on the rate: 2 writes and ¾ of a read unit a record, whatever the pace.',
      ],
    },
    {
      title: 'Throughput through the local runtime',
      how: `${fmt(throughput.put.raw.ops)} operations each way with ${throughput.concurrency} in flight, in ${throughput.rounds} alternating rounds (raw, service, raw …), after ${fmt(throughput.warmup)} unmeasured ones each way: item PUT and GET through the front door (router → cell API → DynamoDB Local) against PutItem and a consistent GetItem sent straight to DynamoDB Local on a table with the same keys and no stream. Each function runs one request per instance, as on Lambda, with at most ${throughput.instancesPerFunction} instances per function (\`--max-instances\`). The ratio is service ÷ raw: the share of DynamoDB Local's throughput the whole path keeps.`,
      head: ['operation', 'raw ops/s', 'service ops/s', 'ratio', 'raw p50 / p99 ms', 'service p50 / p99 ms'],
      rows: [
        ['PUT item', ...path(throughput.put)],
        ['GET item', ...path(throughput.get)],
      ],
      findings: [],
    },
    {
      title: 'Where the CPU goes, per operation',
      how: `CPU ms per operation of each process during the throughput rounds above (from /proc), until the change publishers had caught up with each round, on ${r.machine.cores} cores shared by all of them. The local runtime and the bench's own client are one process; functions of the same service are summed over cells.`,
      head: ['process', 'raw PUT', 'service PUT', 'raw GET', 'service GET'],
      rows: cpuRows(throughput),
      findings: cpuFindings(throughput),
    },
    {
      title: 'Orders',
      how: `Transitions counted from the synthesized definition's success path (${orders.successPath.join(' → ')}); Standard workflows bill $0.025 per 1,000 transitions, and a large region's default quota refills 1,500 transitions/s (5,000 burst). Locally: ${fmt(orders.orders)} orders placed through the front door, ${orders.concurrency} at a time, timed until every execution succeeded.`,
      head: ['transitions per order', 'USD per million orders', 'orders/s the quota allows', 'burst orders', 'completed orders/s locally'],
      rows: [
        [
          String(orders.transitionsPerOrder),
          fmt(orders.usdPerMillionOrders, 2),
          fmt(orders.quotaOrdersPerSecond),
          fmt(orders.quotaBurstOrders),
          fmt(orders.completedPerSecond, 1),
        ],
      ],
      findings: [],
    },
    costSection(r),
    {
      title: 'Synthesis',
      how: 'The whole app (control plane and N cells, bundling and cdk-nag included) synthesized in a fresh process per size; "synth" is the time inside the process, "process" adds Node.js and TypeScript loading.',
      head: ['cells', 'synth s', 'process s', 'resources per cell stack', 'control-plane resources'],
      rows: synthesis.map((run) => [
        String(run.cells),
        fmt(run.synthSeconds, 1),
        fmt(run.processSeconds, 1),
        String(run.cellStackResources),
        String(run.controlPlaneResources),
      ]),
      findings: [
        `Each added cell costs ${fmt(fit.slope * 1000)} ms of synthesis (least squares over ${synthesis.map((run) => run.cells).join(', ')} cells); ${largest.cells} cells take ${fmt(largest.synthSeconds, 1)} s.`,
        `A cell stack holds ${cellResources} resources: ${fmt((cellResources / 500) * 100)}% of CloudFormation's 500 per stack (the design keeps a cell under 400).`,
      ],
    },
  ];
}

/** CPU ms per operation summed over every process. */
const totalCpu = (column: Record<string, number>) => Object.values(column).reduce((sum, ms) => sum + ms, 0);

/** The functions that take their shared code the other way than the default, named. */
function bundlingItsOwn(functions: readonly ColdStartRow[], defaultSource: SharedCodeSource): string[] {
  const other = functions.filter((row) => (row.layerKb === 0) === (defaultSource === 'layer')).map((row) => row.service);
  return other.length === 0
    ? []
    : [
        `Taking their shared code the other way (${defaultSource === 'layer' ? 'bundled' : 'from the layer'}), set on their constructs: ${other.join(', ')}.`,
      ];
}

const usd = (value: number) => `$${value.toFixed(2)}`;

function costSection(r: BenchResults): Section {
  const inputs = {
    cpuMs: { put: r.throughput.put.cpuMsPerOp.service, get: r.throughput.get.cpuMsPerOp.service },
    memoryMb: r.memoryMb,
    transitionsPerOrder: r.orders.transitionsPerOrder,
  };
  const rows = costModel(inputs);
  const byMemory = routerMemoryRows(inputs);
  return {
    title: 'What it costs on AWS',
    how: [
      `USD per million operations, us-east-1 list prices without free tiers: Lambda on Arm $${PRICES.lambdaArmUsdPerGbSecond} per GB-s and $${PRICES.lambdaUsdPerMillionRequests} per million requests; ALB $${PRICES.albUsdPerLcuHour} per LCU-hour, an LCU being ${PRICES.albLambdaGbPerLcuHour} GB processed an hour for Lambda targets; DynamoDB on demand $${PRICES.dynamoUsdPerMillionWrites} per million writes and $${PRICES.dynamoUsdPerMillionReads} per million reads (the stream is read by Lambda's event source mapping, which DynamoDB does not bill); Step Functions Standard $${PRICES.stepFunctionsUsdPerTransition * 1000} per 1,000 transitions; SQS $${PRICES.sqsUsdPerMillionRequests} per million requests (aws.amazon.com/{lambda,elasticloadbalancing,dynamodb,step-functions,sqs}/pricing).`,
      `A function's billed ms: its CPU ms per operation measured in the throughput run above (on this machine's x86 cores; Lambda's Graviton cores are assumed as fast), scaled by ${ASSUMPTIONS.fullVcpuMb} MB ÷ its memory below ${ASSUMPTIONS.fullVcpuMb} MB (Lambda's share of a vCPU), plus its waits: ${ASSUMPTIONS.dynamoCallMs} ms per DynamoDB call, and for the router the cell's whole billed time plus ${ASSUMPTIONS.invokeOverheadMs} ms for the Invoke, since it waits for the answer. Memory as configured (${Object.entries(
        r.memoryMb,
      )
        .filter(([service]) => ['router', 'cell-api', 'publisher', 'payment'].includes(service))
        .map(([service, mb]) => `${service} ${mb} MB`)
        .join(', ')}).`,
      `Assumed: ${fmt(ASSUMPTIONS.bytesPerRequest)} bytes per request through the ALB (its hourly charge, about $16 a month, is not per request), ${ASSUMPTIONS.recordsPerPublisherBatch} changes per publisher invocation, and a payment call of ${ASSUMPTIONS.paymentMs} ms. An order has one line, is placed with an item PUT's CPU, and counts its ${r.orders.transitionsPerOrder} transitions, 6 writes and 1 read, the payment function, one queue message and the publisher for its changes. Not counted: CloudWatch Logs ingestion and metrics, X-Ray traces, data transfer out, the WebSocket API.`,
    ].join(' '),
    head: ['operation', 'router', 'other functions', 'ALB', 'DynamoDB', 'Step Functions and SQS', 'total', 'router share'],
    rows: rows.map((row) => [
      row.operation,
      usd(row.routerUsd),
      usd(row.lambdaUsd),
      usd(row.albUsd),
      usd(row.dynamoUsd),
      usd(row.otherUsd),
      usd(row.totalUsd),
      `${fmt((row.routerUsd / row.totalUsd) * 100)}%`,
    ]),
    findings: [
      `The router's share of an item GET by its memory: ${byMemory.map((row) => `${row.memoryMb} MB ${usd(row.routerUsd)} (${fmt(row.share * 100)}% of ${usd(row.totalUsd)})`).join('; ')}. It is billed while it waits for the cell, so below a whole vCPU a smaller router saves GB-s on the wait but spends them on its own CPU.`,
    ],
  };
}

function cpuRows(throughput: ThroughputFigures): string[][] {
  const columns = [
    throughput.put.cpuMsPerOp.raw,
    throughput.put.cpuMsPerOp.service,
    throughput.get.cpuMsPerOp.raw,
    throughput.get.cpuMsPerOp.service,
  ];
  const names = [...new Set(columns.flatMap((column) => Object.keys(column)))].sort(
    (a, b) => (throughput.put.cpuMsPerOp.service[b] ?? 0) - (throughput.put.cpuMsPerOp.service[a] ?? 0),
  );
  const cell = (value: number | undefined) => (value === undefined || value < 0.005 ? '–' : fmt(value, 2));
  return [
    ...names.map((name) => [name, ...columns.map((column) => cell(column[name]))]),
    ['total', ...columns.map((column) => fmt(totalCpu(column), 2))],
  ];
}

function cpuFindings(throughput: ThroughputFigures): string[] {
  return (['put', 'get'] as const).flatMap((op) => {
    const { raw, service } = throughput[op].cpuMsPerOp;
    if (totalCpu(raw) === 0) return [];
    const dynamo = (column: Record<string, number>) => column['DynamoDB Local'] ?? 0;
    return [
      `${op.toUpperCase()}: the service path costs ${fmt(totalCpu(service) / totalCpu(raw), 1)}× the CPU of the raw call (${fmt(totalCpu(service), 2)} ms against ${fmt(totalCpu(raw), 2)} ms), of which DynamoDB Local ${fmt(dynamo(service), 2)} ms against ${fmt(dynamo(raw), 2)} ms. With every core busy, throughput follows CPU per operation.`,
    ];
  });
}

export function printReport(results: BenchResults): void {
  for (const section of sections(results)) {
    const table = new Table({ head: section.head, style: { head: [], border: [] } });
    table.push(...section.rows);
    process.stdout.write(`\n${section.title}\n${table.toString()}\n`);
    for (const finding of section.findings) process.stdout.write(`  ${finding}\n`);
  }
}

export function renderMarkdown(results: BenchResults): string {
  const { machine: m } = results;
  const lines = [
    '# Benchmarks',
    '',
    `Measured by \`${results.command}\` on ${results.date.slice(0, 10)} in ${fmt(results.durationSeconds)} s${results.quick ? ' (a quick run: fewer samples)' : ''}, on ${m.cores} cores of ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}, Node.js ${m.node}, ${m.java}.`,
    'Every figure comes from one run, and every comparison was measured side by side in it. The raw numbers are in `benchmarks.json`;',
    'what was changed because of them is in [docs/design/performance.md](docs/design/performance.md). Regenerate with `npm run bench`.',
  ];
  for (const section of sections(results)) {
    lines.push('', `## ${section.title}`, '', section.how, '');
    lines.push(`| ${section.head.join(' | ')} |`, `|${section.head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
    for (const row of section.rows) lines.push(`| ${row.join(' | ')} |`);
    if (section.findings.length > 0) lines.push('', ...section.findings.map((finding) => `- ${finding}`));
  }
  return `${lines.join('\n')}\n`;
}

/** What the moves by size say about the goals: a fenced window that does not grow with the tenant, and a copy at half the raw load or more. */
function movesFindings(moves: MoveFigures): string[] {
  const sizes = moves.bySize;
  if (sizes.length === 0) return [];
  const smallest = sizes[0]!;
  const largest = sizes.at(-1)!;
  const findings = [
    `The fenced window's p99: ${fmt(smallest.fencedP99Ms)} ms at ${fmt(smallest.items)} records, ${fmt(largest.fencedP99Ms)} ms at ${fmt(largest.items)}, ${fmt(largest.fencedP99Ms / largest.controlFencedP99Ms, 2)}× that of a ${fmt(CONTROL_ITEMS)}-record tenant moved beside it (${fmt(largest.controlFencedP99Ms)} ms); the goal is at most 1.5× and 500 ms.`,
  ];
  const ratios = sizes.map((size) => `${fmt(size.copyToRaw, 2)} at ${fmt(size.items)}`);
  findings.push(`The copy against the raw load beside it: ${ratios.join(', ')} records (the goal is at least 0.5).`);
  return findings;
}
