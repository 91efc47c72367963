/**
 * What a million requests cost on AWS, from the functions' configured
 * memory, their CPU time measured in this run, and AWS's list prices. Every
 * price and every assumption is named here and printed with the table.
 */

/** AWS list prices, us-east-1, on-demand, without free tiers. */
export const PRICES = {
  /** https://aws.amazon.com/lambda/pricing/ (Arm, first 7.5 billion GB-s a month). */
  lambdaArmUsdPerGbSecond: 0.0000133334,
  /** https://aws.amazon.com/lambda/pricing/ */
  lambdaUsdPerMillionRequests: 0.2,
  /** https://aws.amazon.com/elasticloadbalancing/pricing/ */
  albUsdPerLcuHour: 0.008,
  /** https://aws.amazon.com/elasticloadbalancing/pricing/: one LCU processes 0.4 GB an hour for Lambda targets. */
  albLambdaGbPerLcuHour: 0.4,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ */
  dynamoUsdPerMillionWrites: 0.625,
  dynamoUsdPerMillionReads: 0.125,
  /** https://aws.amazon.com/step-functions/pricing/ (Standard workflows). */
  stepFunctionsUsdPerTransition: 0.025 / 1000,
  /** https://aws.amazon.com/sqs/pricing/ (standard queues). */
  sqsUsdPerMillionRequests: 0.4,
} as const;

/** What the model assumes where this machine cannot measure AWS. */
export const ASSUMPTIONS = {
  /** Lambda gives a function a whole vCPU at 1,769 MB and a proportional share below it (AWS Lambda docs, "memory and computing power"). */
  fullVcpuMb: 1769,
  /** One DynamoDB call inside a region, round trip. */
  dynamoCallMs: 5,
  /** The Lambda Invoke API's own time around a warm function, round trip. */
  invokeOverheadMs: 8,
  /** Request plus response through the ALB. */
  bytesPerRequest: 2_048,
  /** Changes a publisher invocation handles together under load (the stream's batch). */
  recordsPerPublisherBatch: 10,
  /** The simulated payment provider's call, inside the payment function. */
  paymentMs: 50,
} as const;

export interface CostInputs {
  /** CPU ms per operation by function, measured locally on one full core. */
  readonly cpuMs: { readonly put: Record<string, number>; readonly get: Record<string, number> };
  /** Configured memory by function, MB. */
  readonly memoryMb: Record<string, number>;
  readonly transitionsPerOrder: number;
}

export interface CostRow {
  readonly operation: string;
  readonly lambdaUsd: number;
  readonly routerUsd: number;
  readonly albUsd: number;
  readonly dynamoUsd: number;
  readonly otherUsd: number;
  readonly totalUsd: number;
}

/** ms a function is billed for: its CPU at its share of a vCPU, and the waits. */
export function billedMs(cpuMs: number, memoryMb: number, waitMs: number): number {
  return Math.ceil(cpuMs * Math.max(1, ASSUMPTIONS.fullVcpuMb / memoryMb) + waitMs);
}

/** USD of one million invocations of `ms` each at `memoryMb`. */
function lambdaUsd(ms: number, memoryMb: number): number {
  return (ms / 1000) * (memoryMb / 1024) * PRICES.lambdaArmUsdPerGbSecond * 1e6 + PRICES.lambdaUsdPerMillionRequests;
}

const albUsd = () => ((ASSUMPTIONS.bytesPerRequest * 1e6) / 1e9 / PRICES.albLambdaGbPerLcuHour) * PRICES.albUsdPerLcuHour;

/** The front door's cost per million requests of one kind, with the router at `routerMb`. */
function frontDoor(inputs: CostInputs, kind: 'put' | 'get', routerMb: number, dynamoCalls: number) {
  const cpu = inputs.cpuMs[kind];
  const cellMb = inputs.memoryMb['cell-api'] ?? 512;
  const cellMs = billedMs(cpu['cell-api'] ?? 0, cellMb, dynamoCalls * ASSUMPTIONS.dynamoCallMs);
  // The router waits for the cell: its billed time holds the cell's and the Invoke's.
  const routerMs = billedMs(cpu.router ?? 0, routerMb, cellMs + ASSUMPTIONS.invokeOverheadMs);
  return { cell: lambdaUsd(cellMs, cellMb), router: lambdaUsd(routerMs, routerMb) };
}

export function costModel(inputs: CostInputs, routerMb = inputs.memoryMb.router ?? 512): CostRow[] {
  const publisherMb = inputs.memoryMb.publisher ?? 512;
  const publisherPerWrite =
    lambdaUsd(billedMs((inputs.cpuMs.put.publisher ?? 0) * ASSUMPTIONS.recordsPerPublisherBatch, publisherMb, 0), publisherMb) /
    ASSUMPTIONS.recordsPerPublisherBatch;
  const row = (operation: string, parts: { router: number; lambda: number; dynamo: number; other: number }): CostRow => ({
    operation,
    routerUsd: parts.router,
    lambdaUsd: parts.lambda,
    albUsd: albUsd(),
    dynamoUsd: parts.dynamo,
    otherUsd: parts.other,
    totalUsd: parts.router + parts.lambda + albUsd() + parts.dynamo + parts.other,
  });
  const get = frontDoor(inputs, 'get', routerMb, 1);
  const put = frontDoor(inputs, 'put', routerMb, 1);
  // An order of one line, placed with the CPU of an item PUT: the cell API reads the line's item (1 read), puts the
  // order (1 write) and starts the saga (3 calls); the saga reserves the stock (a one-item transaction: 2 writes),
  // writes three statuses (3 writes), runs the payment function, sends a notification to the queue, and each of its
  // changes (about 5) goes through the publisher.
  const paymentMb = inputs.memoryMb.payment ?? 256;
  const payment = lambdaUsd(billedMs(1, paymentMb, ASSUMPTIONS.paymentMs), paymentMb);
  const order = frontDoor(inputs, 'put', routerMb, 3);
  return [
    row('item GET', { router: get.router, lambda: get.cell, dynamo: PRICES.dynamoUsdPerMillionReads, other: 0 }),
    row('item PUT', { router: put.router, lambda: put.cell + publisherPerWrite, dynamo: PRICES.dynamoUsdPerMillionWrites, other: 0 }),
    row('order (one line)', {
      router: order.router,
      lambda: order.cell + payment + 5 * publisherPerWrite,
      dynamo: (1 + 2 + 3) * PRICES.dynamoUsdPerMillionWrites + PRICES.dynamoUsdPerMillionReads,
      other: inputs.transitionsPerOrder * PRICES.stepFunctionsUsdPerTransition * 1e6 + PRICES.sqsUsdPerMillionRequests,
    }),
  ];
}

/** The router's share of an item GET's cost at each memory size. */
export function routerMemoryRows(inputs: CostInputs, sizes: readonly number[] = [128, 256, 512, 1024, 1769]) {
  return sizes.map((mb) => {
    const [get] = costModel(inputs, mb);
    return { memoryMb: mb, routerUsd: get!.routerUsd, totalUsd: get!.totalUsd, share: get!.routerUsd / get!.totalUsd };
  });
}

/** One row of what moving many records costs and takes, at a write rate the table gives the copy. */
export interface BulkMoveRow {
  /** Writes a second the copy may take from the target table (on-demand WCU, records of 1 KB or less). */
  readonly writesPerSecond: number;
  /** Ranges of keys at once (moveCopySegments) the copy needs to reach that rate. */
  readonly segments: number;
  readonly cloneHours: number;
  /** The catch-up's whole-tenant pass, before the fence: a consistent read of both cells, at twice the clone's read rate. */
  readonly catchUpHours: number;
  /** Deleting the source's copy after the grace period (nobody waits for it). */
  readonly forgetHours: number;
  readonly dynamoUsd: number;
  readonly moverUsd: number;
}

/**
 * Moving `records` records of 1 KB or less between cells, from the move's
 * own arithmetic: the clone reads each record once (a consistent Query: a
 * quarter of a read unit a record) and writes it once; the catch-up's pass
 * reads both cells once; forget deletes each record once; the journal adds
 * a write per live write during the move (not counted: it follows the
 * traffic, not the size). One segment does a page of 1,000 records in one
 * Query and 40 BatchWriteItem calls, 8 at a time: 6 round trips.
 */
export function bulkMoveModel(records: number, writeRates: readonly number[], moverMb = 1024): BulkMoveRow[] {
  const perSegment = 1_000 / ((6 * ASSUMPTIONS.dynamoCallMs) / 1_000);
  const readUnits = records * (0.25 + 0.5);
  const writeUnits = records * 2;
  const dynamoUsd = (writeUnits / 1e6) * PRICES.dynamoUsdPerMillionWrites + (readUnits / 1e6) * PRICES.dynamoUsdPerMillionReads;
  return writeRates.map((writesPerSecond) => {
    const cloneSeconds = records / writesPerSecond;
    // The mover runs while the copy runs: the clone, the pass and forget, each at the table's rate.
    const moverSeconds = cloneSeconds + records / (2 * writesPerSecond) + cloneSeconds;
    return {
      writesPerSecond,
      segments: Math.max(1, Math.ceil(writesPerSecond / perSegment)),
      cloneHours: cloneSeconds / 3_600,
      catchUpHours: records / (2 * writesPerSecond) / 3_600,
      forgetHours: cloneSeconds / 3_600,
      dynamoUsd,
      moverUsd: moverSeconds * (moverMb / 1_024) * PRICES.lambdaArmUsdPerGbSecond,
    };
  });
}
