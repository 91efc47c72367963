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
import { quantile } from './stats.ts';

export interface PathFigures {
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface ThroughputFigures {
  readonly concurrency: number;
  readonly put: { readonly service: PathFigures; readonly raw: PathFigures; readonly ratio: number };
  readonly get: { readonly service: PathFigures; readonly raw: PathFigures; readonly ratio: number };
}

export interface ThroughputTarget {
  /** The front door's URL. */
  readonly url: string;
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

async function timed(ops: number, concurrency: number, op: (i: number) => Promise<void>): Promise<PathFigures> {
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
  const seconds = (performance.now() - started) / 1000;
  return { ops, opsPerSecond: ops / seconds, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) };
}

export async function benchThroughput(target: ThroughputTarget, ops: number, concurrency: number): Promise<ThroughputFigures> {
  const headers = { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' };
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
  // The cell tables' shape: string keys, on-demand, a stream of new and old images.
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
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
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

    // Warm both paths (function instances, connections, JIT) before measuring.
    const warm = Math.min(100, ops);
    await timed(warm, concurrency, servicePut);
    await timed(warm, concurrency, rawPut);
    const put = { raw: await timed(ops, concurrency, rawPut), service: await timed(ops, concurrency, servicePut) };
    const get = { raw: await timed(ops, concurrency, rawGet), service: await timed(ops, concurrency, serviceGet) };
    return {
      concurrency,
      put: { ...put, ratio: put.service.opsPerSecond / put.raw.opsPerSecond },
      get: { ...get, ratio: get.service.opsPerSecond / get.raw.opsPerSecond },
    };
  } finally {
    await dynamo.send(new DeleteTableCommand({ TableName: tableName })).catch(() => undefined);
    dynamo.destroy();
  }
}
