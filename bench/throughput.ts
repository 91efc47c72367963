/**
 * Item PUT and GET through the whole local path (front door → router →
 * cell API → DynamoDB Local) against the same operations sent straight to
 * DynamoDB Local, at the same concurrency, in the same run.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import pMap from 'p-map';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/dynamodb-local.ts';
import { cpuBetween } from './cpu.ts';
import { quantile } from './stats.ts';

export interface PathFigures {
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface SideBySide {
  readonly service: PathFigures;
  readonly raw: PathFigures;
  readonly ratio: number;
  /** CPU ms per operation by process group, on each path. */
  readonly cpuMsPerOp: { readonly service: Record<string, number>; readonly raw: Record<string, number> };
}

export interface ThroughputFigures {
  readonly concurrency: number;
  /** Alternating rounds of each path. */
  readonly rounds: number;
  /** Unmeasured operations each way before each kind's rounds. */
  readonly warmup: number;
  readonly put: SideBySide;
  readonly get: SideBySide;
}

export interface ThroughputTarget {
  /** The front door's URL. */
  readonly url: string;
  /** Cumulative CPU ms by process group, sampled around each round. */
  readonly cpu: () => Map<string, number>;
  /** Resolves once the work a round set off has finished (the change publishers have caught up). */
  readonly settle: () => Promise<void>;
  readonly dynamoEndpoint: string;
  readonly token: string;
  readonly tenantId: string;
}

/** The item every PUT writes (its stock also serves the order bench). */
export const benchItem = (i: number) => ({
  title: `Bench item ${i}`,
  description: 'An item written by npm run bench',
  price: { amount: 1250, currency: 'EUR' },
  stock: 1_000_000,
  attributes: { colour: 'blue', size: 'M' },
});
export const benchItemId = (i: number) => `bench-${i}`;

/** What every bench request through the front door sends: the tenant's token, and JSON. */
export const frontDoorHeaders = (target: Pick<ThroughputTarget, 'token'>) => ({
  authorization: `Bearer ${target.token}`,
  'content-type': 'application/json',
});

/** Runs `ops` operations, `concurrency` at a time; returns each one's latency and the seconds they took together. */
async function timed(ops: number, concurrency: number, op: (i: number) => Promise<void>) {
  const latencies: number[] = [];
  const started = performance.now();
  await pMap(
    Array.from({ length: ops }, (_, i) => i),
    async (i) => {
      const t0 = performance.now();
      await op(i);
      latencies.push(performance.now() - t0);
    },
    { concurrency },
  );
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

/**
 * The two paths in alternating rounds (raw, service, raw, service …), so
 * that a slow moment of the machine, or DynamoDB Local's JIT warming up,
 * does not favour whichever ran second.
 */
async function sideBySide(
  rounds: number,
  ops: number,
  concurrency: number,
  raw: (i: number) => Promise<void>,
  service: (i: number) => Promise<void>,
  target: Pick<ThroughputTarget, 'cpu' | 'settle'>,
): Promise<SideBySide> {
  const runs = { raw: [] as Array<Awaited<ReturnType<typeof timed>>>, service: [] as Array<Awaited<ReturnType<typeof timed>>> };
  const cpuMs = { raw: new Map<string, number>(), service: new Map<string, number>() };
  const perRound = Math.ceil(ops / rounds);
  const measured = async (side: 'raw' | 'service', op: (i: number) => Promise<void>) => {
    const before = target.cpu();
    runs[side].push(await timed(perRound, concurrency, op));
    // Not timed, but charged to the side that caused it: the stream's changes reaching the publishers.
    await target.settle();
    for (const [name, ms] of cpuBetween(before, target.cpu())) cpuMs[side].set(name, (cpuMs[side].get(name) ?? 0) + ms);
  };
  for (let round = 0; round < rounds; round++) {
    await measured('raw', raw);
    await measured('service', service);
  }
  const figures = (list: typeof runs.raw): PathFigures => {
    const latencies = list.flatMap((run) => run.latencies);
    const seconds = list.reduce((sum, run) => sum + run.seconds, 0);
    return { ops: latencies.length, opsPerSecond: latencies.length / seconds, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) };
  };
  const result = { raw: figures(runs.raw), service: figures(runs.service) };
  const perOp = (side: 'raw' | 'service') =>
    Object.fromEntries([...cpuMs[side]].filter(([, ms]) => ms > 0).map(([name, ms]) => [name, ms / result[side].ops]));
  return {
    ...result,
    ratio: result.service.opsPerSecond / result.raw.opsPerSecond,
    cpuMsPerOp: { raw: perOp('raw'), service: perOp('service') },
  };
}

export interface ThroughputPlan {
  /** Operations each way, per operation kind. */
  readonly ops: number;
  readonly concurrency: number;
  readonly rounds: number;
  /**
   * Operations each way, per operation kind, run before measuring: DynamoDB
   * Local's JIT and the functions' V8 take thousands of requests to settle,
   * and a short warm-up measures their compilers rather than the path.
   */
  readonly warmup: number;
}

export async function benchThroughput(
  target: ThroughputTarget,
  { ops, concurrency, rounds, warmup }: ThroughputPlan,
  progress: (line: string) => void = () => undefined,
): Promise<ThroughputFigures> {
  const headers = frontDoorHeaders(target);
  const itemUrl = (i: number) => `${target.url}/tenants/${target.tenantId}/items/${benchItemId(i)}`;
  const servicePut = async (i: number) => {
    const response = await fetch(itemUrl(i), { method: 'PUT', headers, body: JSON.stringify(benchItem(i)) });
    const body = await response.text();
    if (response.status !== 200 && response.status !== 201) throw new Error(`PUT ${itemUrl(i)}: ${response.status} ${body}`);
  };
  const serviceGet = async (i: number) => {
    const response = await fetch(itemUrl(i), { headers });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`GET ${itemUrl(i)}: ${response.status} ${body}`);
  };

  const dynamo = new DynamoDBClient({ endpoint: target.dynamoEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  // The cell tables' keys, on-demand, and no stream. The stream is part of our
  // path (it feeds the change publisher), so its cost is counted as ours. And
  // in DynamoDB Local a stream nobody reads makes the baseline depend on what
  // ran before it: once the service had made 8,000 PUTs, a PutItem on such a
  // table cost DynamoDB Local 2.7 ms of CPU, against 0.6 ms without a stream.
  const tableName = `bench-raw-${randomUUID()}`;
  await dynamo.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  try {
    await waitUntilTableExists({ client: dynamo, maxWaitTime: 30 }, { TableName: tableName });
    const key = (i: number) => ({ pk: { S: `TENANT#${target.tenantId}` }, sk: { S: `ITEM#${benchItemId(i)}` } });
    const rawPut = async (i: number) => {
      const item = benchItem(i);
      await dynamo.send(
        new PutItemCommand({
          TableName: tableName,
          Item: {
            ...key(i),
            title: { S: item.title },
            description: { S: item.description },
            price: { M: { amount: { N: String(item.price.amount) }, currency: { S: item.price.currency } } },
            stock: { N: String(item.stock) },
            attributes: { M: { colour: { S: 'blue' }, size: { S: 'M' } } },
            version: { N: '1' },
            updatedAt: { S: new Date().toISOString() },
          },
        }),
      );
    };
    const rawGet = async (i: number) => {
      const { Item } = await dynamo.send(new GetItemCommand({ TableName: tableName, Key: key(i), ConsistentRead: true }));
      if (!Item) throw new Error(`raw GET ${i}: not found`);
    };

    // Warm both paths (function instances, connections, both JITs) before measuring each operation.
    const warm = async (kind: string, raw: (i: number) => Promise<void>, service: (i: number) => Promise<void>) => {
      progress(`warming up: ${warmup.toLocaleString('en-US')} ${kind}s each way`);
      await timed(warmup, concurrency, service);
      await timed(warmup, concurrency, raw);
      await target.settle();
      progress(`measuring ${kind}`);
    };
    await warm('PUT', rawPut, servicePut);
    const put = await sideBySide(rounds, ops, concurrency, rawPut, servicePut, target);
    await warm('GET', rawGet, serviceGet);
    const get = await sideBySide(rounds, ops, concurrency, rawGet, serviceGet, target);
    return { concurrency, rounds, warmup, put, get };
  } finally {
    await dynamo.send(new DeleteTableCommand({ TableName: tableName })).catch(() => undefined);
    dynamo.destroy();
  }
}
