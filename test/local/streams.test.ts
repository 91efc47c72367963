import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import pMap from 'p-map';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { LocalAssembly, LocalStreamMapping } from '../../local/assembly.ts';
import { LocalQueues } from '../../local/queues.ts';
import { IDLE_POLL_SHARE, idleInterval, LocalStreams } from '../../local/streams.ts';
import { eventually } from '../support/eventually.ts';
import { localClient } from '../support/tables.ts';

const endpoint = inject('dynamoEndpoint');
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A table with a stream, and a LocalStreams whose one mapping invokes `invoke`. */
async function setUp(
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler without batch item failures returns nothing
  invoke: (event: DynamoDBStreamEvent, functionName: string) => Promise<DynamoDBBatchResponse | void>,
  mapping: Partial<LocalStreamMapping> = {},
  pollIntervalMs = 20,
  /** `recordsEndpoint`: where the pollers read records (a proxy in front of DynamoDB Local); `stream`: false for a table without one. */
  { recordsEndpoint = endpoint, stream = true }: { recordsEndpoint?: string; stream?: boolean } = {},
) {
  const client = localClient(endpoint);
  const tableName = `streams-${randomUUID()}`;
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      ...(stream && { StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } }),
    }),
  );
  const doc = DynamoDBDocumentClient.from(client);
  const put = (pk: string, extra: Record<string, unknown> = {}) => doc.send(new PutCommand({ TableName: tableName, Item: { pk, ...extra } }));
  const queues = new LocalQueues();
  queues.define(['failures']);
  const logged: string[] = [];
  const streams = new LocalStreams({
    dynamodb: client,
    dynamoEndpoint: recordsEndpoint,
    invoke: (name, event) => invoke(event as DynamoDBStreamEvent, name),
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
  const start = (mappings: LocalStreamMapping[] = [full]) =>
    streams.load({ region: 'eu-west-1', streamMappings: mappings } as unknown as LocalAssembly);
  cleanups.push(async () => {
    await streams.stop();
    await client.send(new DeleteTableCommand({ TableName: tableName }));
    client.destroy();
  });
  return { put, start, streams, queues, logged, mapping: full, doc, tableName };
}

/** A function that waits until `release`: `inFlight` resolves once an invocation has begun. */
function heldInvocation() {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let begun!: () => void;
  const inFlight = new Promise<void>((resolve) => (begun = resolve));
  return {
    release,
    inFlight,
    hold: async () => {
      begun();
      await held;
    },
  };
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

  it('hands a backlog on a batch at a time from one read: batches do not wait a poll interval each', async () => {
    const batches: string[][] = [];
    // An hour between polls: only a poller that delivers all it read, batch after batch, delivers all five.
    const { put, start } = await setUp(
      async (event) => void batches.push(keysOf(event) as string[]),
      { batchSize: 2, startingPosition: 'TRIM_HORIZON' },
      3_600_000,
    );
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
    expect(logged).toEqual([
      'publisher: batch failed, retrying: boom',
      expect.stringMatching(/^publisher: gave up on 1 stream records of \S+ after 2 retries$/),
    ]);
  });

  it('keeps a running poller when loaded again, and stops one whose mapping is gone', async () => {
    const seen: string[] = [];
    const { put, start, streams } = await setUp(async (event) => void seen.push(...(keysOf(event) as string[])));
    start();
    start();
    await streams.drained();
    await put('once');
    await eventually(() => expect(seen).toContain('once'));
    await streams.drained();
    // Gone from the assembly: its poller stops, so what is written meanwhile reaches no one.
    start([]);
    await put('while-unloaded');
    // Back: a new poller, from LATEST.
    start();
    await streams.drained();
    await put('after');
    await eventually(() => expect(seen).toContain('after'));
    await streams.drained();
    expect(seen).toEqual(['once', 'after']);
  });

  it('keeps its place when loaded again while a batch is in flight: nothing written meanwhile is skipped', async () => {
    const seen: string[] = [];
    const { hold, release, inFlight } = heldInvocation();
    const { put, start, streams } = await setUp(async (event) => {
      seen.push(...(keysOf(event) as string[]));
      await hold();
    });
    start();
    await streams.drained();
    await put('first');
    await inFlight;
    await put('meanwhile');
    // A reload (as `--watch` does) while the poller waits on the function: the poller and its place are kept.
    start();
    release();
    await put('after');
    await eventually(() => expect(seen).toEqual(['first', 'meanwhile', 'after']));
    await streams.stop();
    // Stopped: nothing left to wait for.
    await streams.drained();
  });

  it('runs one poller per mapping: two functions of one table each get every record', async () => {
    const seen: string[] = [];
    const { put, start, streams, mapping } = await setUp(
      async (event, functionName) => void seen.push(...keysOf(event).map((key) => `${functionName}:${key}`)),
    );
    start([mapping, { ...mapping, functionName: 'auditor' }]);
    await streams.drained();
    await put('k');
    await eventually(() => expect(seen.sort()).toEqual(['auditor:k', 'publisher:k']));
  });

  it('stops once the batch in flight is delivered, and lets a wait for drained go', async () => {
    const { hold, release, inFlight } = heldInvocation();
    let invocations = 0;
    const { put, start, streams } = await setUp(async () => {
      invocations += 1;
      await hold();
    });
    start();
    await streams.drained();
    await put('slow');
    await inFlight;
    const drained = streams.drained();
    let stopped = false;
    const stopping = streams.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stopped).toBe(false);
    release();
    await stopping;
    await drained;
    expect(invocations).toBe(1);
  });

  it('logs a poll that keeps failing once, with its reason', async () => {
    const { start, logged, tableName } = await setUp(async () => undefined, {}, 5, { stream: false });
    start();
    await eventually(() => expect(logged).toHaveLength(1));
    // Polls go on every 5 ms, failing the same way each time.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(logged).toEqual([`publisher: stream poll failed, retrying: ${tableName} has no stream`]);
  });

  it('takes a fresh iterator after the last record read when one expires, losing nothing and sending nothing twice; logs other read errors', async () => {
    const proxy = await startRecordsProxy();
    cleanups.push(proxy.close);
    const seen: string[] = [];
    const { put, start, streams, logged } = await setUp(async (event) => void seen.push(...(keysOf(event) as string[])), {}, 20, {
      recordsEndpoint: proxy.url,
    });
    start();
    await streams.drained();
    for (const key of ['a', 'b', 'c']) await put(key);
    await eventually(() => expect(seen).toEqual(['a', 'b', 'c']));
    // The iterator in use now expires for good: only one taken anew gets further.
    proxy.expireNextIterator();
    for (const key of ['d', 'e']) await put(key);
    await eventually(() => expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']));
    expect(proxy.expired()).toBe(1);
    // The same for an iterator past the stream's retention.
    proxy.expireNextIterator('TrimmedDataAccessException');
    await put('e2');
    await eventually(() => expect(seen).toEqual(['a', 'b', 'c', 'd', 'e', 'e2']));
    expect(proxy.expired()).toBe(2);
    expect(logged).toEqual([]);
    proxy.failNext(500, { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'the disk is full' });
    proxy.failNext(503, {});
    await put('f');
    await eventually(() => expect(seen).toEqual(['a', 'b', 'c', 'd', 'e', 'e2', 'f']));
    await streams.drained();
    expect(logged).toEqual([
      'publisher: stream poll failed, retrying: the disk is full',
      'publisher: stream poll failed, retrying: GetRecords: HTTP 503',
    ]);
  });

  it('retries from the first of the failures a function reports, logs the failed batch once, and describes exactly what it gave up on', async () => {
    const seen: string[][] = [];
    const creationTimes: number[] = [];
    const sequenceNumbers: string[] = [];
    const { put, start, streams, queues, logged } = await setUp(
      async (event) => {
        seen.push(keysOf(event) as string[]);
        if (seen.length === 1) {
          creationTimes.push(...event.Records.map((r) => r.dynamodb!.ApproximateCreationDateTime!));
          sequenceNumbers.push(...event.Records.map((r) => r.dynamodb!.SequenceNumber!));
          // c and b failed, in that order: retried from b.
          const failed = event.Records.filter((r) => ['c', 'b'].includes(r.dynamodb!.Keys!.pk!.S!)).reverse();
          return { batchItemFailures: failed.map((r) => ({ itemIdentifier: r.dynamodb!.SequenceNumber! })) };
        }
        throw new Error('still broken');
      },
      { startingPosition: 'TRIM_HORIZON', maximumRetryAttempts: 2 },
    );
    for (const key of ['a', 'b', 'c', 'd']) await put(key);
    start();
    await eventually(() => expect(queues.messages('failures')).toHaveLength(1));
    await streams.drained();
    expect(seen).toEqual([
      ['a', 'b', 'c', 'd'],
      ['b', 'c', 'd'],
      ['b', 'c', 'd'],
    ]);
    const body = JSON.parse(queues.messages('failures')![0]!.body) as Record<string, any>;
    expect(body).toMatchObject({
      requestContext: {
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: 3,
        functionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:publisher',
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
    });
    expect(body.DDBStreamBatchInfo).toMatchObject({
      batchSize: 3,
      approximateArrivalOfFirstRecord: new Date(creationTimes[1]! * 1000).toISOString(),
      approximateArrivalOfLastRecord: new Date(creationTimes[3]! * 1000).toISOString(),
    });
    // What was given up on: b to d.
    expect([body.DDBStreamBatchInfo.startSequenceNumber, body.DDBStreamBatchInfo.endSequenceNumber]).toEqual([
      sequenceNumbers[1],
      sequenceNumbers[3],
    ]);
    expect(logged).toEqual([
      'publisher: batch failed, retrying: the function reported 2 of 4 records failed',
      expect.stringMatching(/^publisher: gave up on 3 stream records of \S+ after 2 retries$/),
    ]);
  });

  it('retries without end at -1, and gives up after the first try at 0, sending no failure for a batch that went through', async () => {
    let failures = 4;
    const endless = await setUp(
      async () => {
        if (failures-- > 0) throw new Error('not yet');
      },
      { maximumRetryAttempts: -1 },
    );
    endless.start();
    await endless.streams.drained();
    await endless.put('k');
    await eventually(() => expect(failures).toBe(-1));
    await endless.streams.drained();
    expect(endless.queues.messages('failures')).toEqual([]);

    let tries = 0;
    const once = await setUp(
      async (event) => {
        tries += 1;
        if (keysOf(event).includes('bad')) throw new Error('bad');
      },
      { maximumRetryAttempts: 0 },
    );
    once.start();
    await once.streams.drained();
    await once.put('good');
    await eventually(() => expect(tries).toBe(1));
    await once.streams.drained();
    await once.put('bad');
    await eventually(() => expect(once.queues.messages('failures')).toHaveLength(1));
    await once.streams.drained();
    expect(JSON.parse(once.queues.messages('failures')![0]!.body).DDBStreamBatchInfo.batchSize).toBe(1);
    expect(tries).toBe(2);
  });

  it('restores empty maps however deep, in lists, and in old images', async () => {
    const records: DynamoDBStreamEvent['Records'] = [];
    const { put, start, streams } = await setUp(async (event) => void records.push(...event.Records));
    start();
    await streams.drained();
    await put('deep', { nested: { inner: {}, n: 1 }, list: [{}, 'x'] });
    await put('deep', { n: 2 });
    await eventually(() => expect(records).toHaveLength(2));
    const image = { pk: { S: 'deep' }, nested: { M: { inner: { M: {} }, n: { N: '1' } } }, list: { L: [{ M: {} }, { S: 'x' }] } };
    expect(records[0]!.dynamodb!.NewImage).toEqual(image);
    expect(records[1]!.dynamodb!.OldImage).toEqual(image);
  });
});

/**
 * DynamoDB Local behind a proxy that can fail the next GetRecords with an
 * error of the test's choosing, or expire an iterator for good (every read
 * with it answers ExpiredIteratorException, as DynamoDB does after 15 minutes).
 */
async function startRecordsProxy() {
  const faults: Array<{ status: number; body: object }> = [];
  let expireNext: string | undefined;
  const expiredIterators = new Map<string, string>();
  let expiredAnswers = 0;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const answer = (status: number, json: object) => {
          response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
          response.end(JSON.stringify(json));
        };
        if (request.headers['x-amz-target'] === 'DynamoDBStreams_20120810.GetRecords') {
          const { ShardIterator } = JSON.parse(body) as { ShardIterator: string };
          if (expireNext) {
            expiredIterators.set(ShardIterator, expireNext);
            expireNext = undefined;
          }
          const refusal = expiredIterators.get(ShardIterator);
          if (refusal) {
            expiredAnswers += 1;
            return answer(400, { __type: `com.amazonaws.dynamodb.v20120810#${refusal}`, message: 'Iterator expired' });
          }
          const fault = faults.shift();
          if (fault) return answer(fault.status, fault.body);
        }
        const headers = Object.fromEntries(
          Object.entries(request.headers).filter(([name]) => !['host', 'content-length', 'connection'].includes(name)) as Array<[string, string]>,
        );
        const forwarded = await fetch(endpoint, { method: request.method, headers, body });
        response.writeHead(forwarded.status, { 'content-type': forwarded.headers.get('content-type') ?? 'application/x-amz-json-1.0' });
        response.end(Buffer.from(await forwarded.arrayBuffer()));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** The next GetRecords' iterator is refused from now on, with ExpiredIteratorException or (past the stream's 24 h) TrimmedDataAccessException. */
    expireNextIterator: (refusal: 'ExpiredIteratorException' | 'TrimmedDataAccessException' = 'ExpiredIteratorException') =>
      void (expireNext = refusal),
    /** How many reads with a refused iterator were answered: one each, if the poller took a new one at once. */
    expired: () => expiredAnswers,
    failNext: (status: number, body: object) => void faults.push({ status, body }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('how often a stream with nothing new is read', () => {
  it("at Lambda's pace while an empty read is cheap, and so that slow empty reads take at most a tenth of DynamoDB Local's time", () => {
    expect(IDLE_POLL_SHARE).toBe(0.1);
    expect(idleInterval(250, 3)).toBe(250);
    expect(idleInterval(250, 25)).toBe(250);
    expect(idleInterval(250, 108)).toBe(1_080);
    expect(idleInterval(1_000, 200)).toBe(2_000);
  });
});
