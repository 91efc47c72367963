import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import pMap from 'p-map';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { LocalAssembly, LocalStreamMapping } from '../../local/assembly.ts';
import { LocalQueues } from '../../local/queues.ts';
import { LocalStreams } from '../../local/streams.ts';
import { eventually } from '../support/eventually.ts';
import { localClient } from '../support/tables.ts';

const endpoint = inject('dynamoEndpoint');
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A table with a stream, and a LocalStreams whose one mapping invokes `invoke`. */
async function setUp(
  invoke: (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>,
  mapping: Partial<LocalStreamMapping> = {},
  pollIntervalMs = 20,
) {
  const client = localClient(endpoint);
  const tableName = `streams-${randomUUID()}`;
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  const doc = DynamoDBDocumentClient.from(client);
  const put = (pk: string, extra: Record<string, unknown> = {}) => doc.send(new PutCommand({ TableName: tableName, Item: { pk, ...extra } }));
  const queues = new LocalQueues();
  queues.define(['failures']);
  const logged: string[] = [];
  const streams = new LocalStreams({
    dynamodb: client,
    dynamoEndpoint: endpoint,
    invoke: (_name, event) => invoke(event as DynamoDBStreamEvent),
    queues,
    pollIntervalMs,
    retryDelayMs: 5,
    log: (line) => logged.push(line),
  });
  const full: LocalStreamMapping = {
    stackName: 's',
    logicalId: 'Mapping',
    tableName,
    functionName: 'publisher',
    batchSize: 100,
    startingPosition: 'LATEST',
    reportBatchItemFailures: true,
    maximumRetryAttempts: 2,
    onFailureQueue: 'failures',
    ...mapping,
  };
  const start = () => streams.load({ region: 'eu-west-1', streamMappings: [full] } as unknown as LocalAssembly);
  cleanups.push(async () => {
    await streams.stop();
    await client.send(new DeleteTableCommand({ TableName: tableName }));
    client.destroy();
  });
  return { put, start, streams, queues, logged };
}

const keysOf = (event: DynamoDBStreamEvent) => event.Records.map((r) => r.dynamodb?.Keys?.pk?.S);

describe('LocalStreams', () => {
  it('starts at LATEST, delivers records in order shaped as Lambda shapes them, empty maps included', async () => {
    const batches: DynamoDBStreamEvent[] = [];
    const { put, start, streams } = await setUp(async (event) => {
      batches.push(event);
    });
    await put('before');
    start();
    await streams.drained();
    await put('a', { attributes: {}, n: 1 });
    await put('b');
    await put('a', { n: 2 });
    await eventually(() => expect(batches.flatMap(keysOf).length).toBeGreaterThanOrEqual(3));
    const records = batches.flatMap((b) => b.Records);
    expect(records.map((r) => [r.eventName, r.dynamodb?.Keys?.pk?.S])).toEqual([
      ['INSERT', 'a'],
      ['INSERT', 'b'],
      ['MODIFY', 'a'],
    ]);
    expect(records[0]).toMatchObject({
      eventSource: 'aws:dynamodb',
      awsRegion: 'eu-west-1',
      eventSourceARN: expect.stringContaining('/stream/'),
      dynamodb: { NewImage: { pk: { S: 'a' }, attributes: { M: {} }, n: { N: '1' } }, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
    expect(typeof records[0]!.dynamodb!.ApproximateCreationDateTime).toBe('number');
    expect(records[2]!.dynamodb!.OldImage).toMatchObject({ n: { N: '1' } });
  });

  it("polls at Lambda's pace: a steady flow of changes comes a poll interval's worth at a time", async () => {
    const batches: string[][] = [];
    const intervalMs = 100;
    const { put, start, streams } = await setUp(async (event) => void batches.push(keysOf(event) as string[]), {}, intervalMs);
    start();
    await streams.drained();
    const keys = Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    // Written steadily, four at a time: a poller that read again as soon as it had read
    // something would find a few new records on every read, and send a batch for each.
    const started = performance.now();
    await pMap(keys, (key) => put(key), { concurrency: 4 });
    const writingMs = performance.now() - started;
    await eventually(() => expect(batches.flat().sort()).toEqual(keys));
    expect(batches.length).toBeLessThanOrEqual(Math.ceil(writingMs / intervalMs) + 2);
  });

  it('reads on at once after a full batch: a backlog does not wait for the poll interval', async () => {
    const batches: string[][] = [];
    // An hour between polls: only a poller that reads on after a full batch delivers all five.
    const { put, start } = await setUp(async (event) => void batches.push(keysOf(event) as string[]), { batchSize: 2, startingPosition: 'TRIM_HORIZON' }, 3_600_000);
    for (const key of ['a', 'b', 'c', 'd', 'e']) await put(key);
    start();
    await eventually(() => expect(batches).toEqual([['a', 'b'], ['c', 'd'], ['e']]), 30_000);
  });

  it('retries a batch from its first reported failure, then goes on', async () => {
    const seen: string[][] = [];
    let failOnce = true;
    const { put, start, streams } = await setUp(
      async (event) => {
        seen.push(keysOf(event) as string[]);
        const failed = event.Records.find((r) => r.dynamodb?.Keys?.pk?.S === 'b');
        if (failed && failOnce) {
          failOnce = false;
          return { batchItemFailures: [{ itemIdentifier: failed.dynamodb!.SequenceNumber! }] };
        }
        return { batchItemFailures: [] };
      },
      // Written before the poller starts from the stream's start: the three are one batch.
      { startingPosition: 'TRIM_HORIZON' },
    );
    for (const key of ['a', 'b', 'c']) await put(key);
    start();
    await eventually(() => expect(seen).toHaveLength(2));
    await streams.drained();
    // The batch, then again from b: a, before the failure, is not resent; c, after it, is.
    expect(seen).toEqual([
      ['a', 'b', 'c'],
      ['b', 'c'],
    ]);
  });

  it('after the retries, describes the batch on the on-failure queue and moves past it', async () => {
    let invocations = 0;
    const { put, start, streams, queues, logged } = await setUp(async (event) => {
      if (!keysOf(event).includes('poison')) return;
      invocations += 1;
      throw new Error('boom');
    });
    start();
    await streams.drained();
    await put('poison');
    await eventually(() => expect(queues.messages('failures')).toHaveLength(1));
    await streams.drained();
    // Counted, not taken from the config: the first try and maximumRetryAttempts (2) retries, then no more.
    expect(invocations).toBe(3);
    const [failure] = queues.messages('failures')!;
    const body = JSON.parse(failure!.body) as Record<string, any>;
    expect(body.requestContext).toMatchObject({ condition: 'RetryAttemptsExhausted', approximateInvokeCount: invocations });
    expect(body.DDBStreamBatchInfo).toMatchObject({ batchSize: 1, streamArn: expect.stringContaining('/stream/') });
    expect(logged.some((line) => line.includes('gave up on 1 stream records'))).toBe(true);
  });
});
