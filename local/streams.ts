import { setTimeout as delay } from 'node:timers/promises';
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import type { LocalAssembly, LocalStreamMapping } from './assembly.ts';
import type { LocalQueues } from './queues.ts';
import { functionArn } from './template-values.ts';

export interface LocalStreamsOptions {
  readonly dynamodb: DynamoDBClient;
  /** DynamoDB Local's endpoint (records are read off the wire from it). */
  readonly dynamoEndpoint: string;
  readonly invoke: (functionName: string, event: unknown) => Promise<unknown>;
  readonly queues: LocalQueues;
  /**
   * Time between the starts of two polls of a stream, backlog or not: a
   * poller that read on at once under a backlog would keep DynamoDB Local
   * busy and slow every other call of the runtime.
   * @default 250 (Lambda polls a DynamoDB stream's shards 4 times a second)
   */
  readonly pollIntervalMs?: number;
  /** Wait before the first retry of a failed batch; doubles each time, up to 5 s. @default 200 */
  readonly retryDelayMs?: number;
  /** A line per failed batch, batch given up on, or failed poll. @default silent */
  readonly log?: (line: string) => void;
}

/** How often a poller looks for new shards (DynamoDB rolls a stream's shards over). */
const SHARD_REFRESH_MS = 1_000;

/** The most records one GetRecords returns: a poll reads up to this many, and hands them on a batch at a time. */
const RECORDS_PER_READ = 1_000;

/**
 * At most this share of the time goes to reading a stream that had nothing
 * new. DynamoDB Local is not Lambda's poller: an empty GetRecords, or a
 * DescribeStream, costs it time in proportion to the stream records it keeps
 * for every table (about 108 ms with 100,000 records in another table's
 * stream, against 2.5 ms on the table that holds them), on the one queue that
 * serves every call. Polled four times a second, a few idle streams would
 * take all of it.
 */
export const IDLE_POLL_SHARE = 0.1;

/** How long to wait after a call that took `spentMs` and found nothing new: `minimumMs`, or longer when the call was slow. */
export function idleInterval(minimumMs: number, spentMs: number): number {
  return Math.max(minimumMs, spentMs / IDLE_POLL_SHARE);
}

/**
 * Lambda's event source mappings from DynamoDB streams, locally: one poller
 * per mapping reads its table's stream in DynamoDB Local shard by shard, in
 * order, and invokes the function with batches shaped as Lambda shapes them.
 * A batch that fails is retried (from the first failed record when the
 * function reports batch item failures) up to the mapping's retry limit, then
 * described on its on-failure queue, as on AWS.
 */
export class LocalStreams {
  private readonly pollers = new Map<string, Poller>();
  private readonly streams: DynamoDBStreamsClient;

  constructor(private readonly options: LocalStreamsOptions) {
    const config = options.dynamodb.config;
    this.streams = new DynamoDBStreamsClient({ endpoint: options.dynamoEndpoint, region: config.region, credentials: config.credentials });
  }

  /** Starts the pollers of the assembly's mappings (keeping those already running) and stops the others. */
  load(assembly: LocalAssembly): void {
    const wanted = new Map(assembly.streamMappings.map((m) => [`${m.tableName}->${m.functionName}`, m]));
    for (const [key, poller] of this.pollers) {
      if (!wanted.has(key)) {
        void poller.stop();
        this.pollers.delete(key);
      }
    }
    for (const [key, mapping] of wanted) {
      if (!this.pollers.has(key)) this.pollers.set(key, new Poller(mapping, assembly.region, this.streams, this.options));
    }
  }

  /** Resolves once every poller has read what its stream held when called, and delivered it. */
  async drained(): Promise<void> {
    await Promise.all([...this.pollers.values()].map((p) => p.drained()));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.pollers.values()].map((p) => p.stop()));
    this.pollers.clear();
    this.streams.destroy();
  }
}

/** A GetRecords answer off the wire: records in the shape Lambda passes them on. */
interface RawRecordsPage {
  Records?: DynamoDBRecord[];
  NextShardIterator?: string;
}

interface Shard {
  iterator: string | undefined;
  /** The last record read (delivered or skipped): where a fresh iterator resumes. */
  lastSequenceNumber?: string;
  /** Still skipping what the shard held when a LATEST mapping started. */
  skipping: boolean;
}

class Poller {
  private stopped = false;
  private readonly done: Promise<void>;
  /** Open shards; a shard that closed is dropped. */
  private readonly shards = new Map<string, Shard>();
  private readonly seen = new Set<string>();
  private idleWaiters: Array<() => void> = [];
  /** Ends a wait between polls at once when the poller stops. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly mapping: LocalStreamMapping,
    private readonly region: string,
    private readonly streams: DynamoDBStreamsClient,
    private readonly options: LocalStreamsOptions,
  ) {
    this.done = this.run();
  }

  drained(): Promise<void> {
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    for (const wake of this.idleWaiters.splice(0)) wake();
    await this.done;
  }

  /** Polls until stopped; an error is logged once per kind and the poll goes on, as Lambda's poller does. */
  private async run(): Promise<void> {
    let streamArn: string | undefined;
    let refreshedAt = 0;
    let refreshEveryMs = SHARD_REFRESH_MS;
    let first = true;
    let lastError = '';
    const pollIntervalMs = this.options.pollIntervalMs ?? 250;
    while (!this.stopped) {
      const pollStarted = Date.now();
      let interval = pollIntervalMs;
      try {
        streamArn ??= await this.streamArn();
        if (Date.now() - refreshedAt >= refreshEveryMs) {
          const describing = Date.now();
          await this.discoverShards(streamArn, first && this.mapping.startingPosition === 'LATEST');
          first = false;
          refreshedAt = Date.now();
          refreshEveryMs = idleInterval(SHARD_REFRESH_MS, refreshedAt - describing);
        }
        const reading = Date.now();
        const read = await this.pollShards(streamArn);
        lastError = '';
        // Records read: on at Lambda's pace. Nothing new: no faster than DynamoDB Local can spare.
        if (read === 0) {
          interval = idleInterval(pollIntervalMs, Date.now() - reading);
          for (const wake of this.idleWaiters.splice(0)) wake();
        }
      } catch (error) {
        const message = (error as Error).message;
        if (message !== lastError) this.options.log?.(`${this.mapping.functionName}: stream poll failed, retrying: ${message}`);
        lastError = message;
      }
      await sleep(Math.max(0, interval - (Date.now() - pollStarted)), this.stopping.signal);
    }
  }

  private async streamArn(): Promise<string> {
    const { Table } = await this.options.dynamodb.send(new DescribeTableCommand({ TableName: this.mapping.tableName }));
    if (!Table?.LatestStreamArn) throw new Error(`${this.mapping.tableName} has no stream`);
    return Table.LatestStreamArn;
  }

  /**
   * Shards there when a LATEST mapping starts are read from their start with
   * what they held skipped: DynamoDB Local's LATEST iterators fail on the
   * first record written after them. Later shards (children) are read whole.
   */
  private async discoverShards(streamArn: string, skipExisting: boolean): Promise<void> {
    let ExclusiveStartShardId: string | undefined;
    do {
      const { StreamDescription } = await this.streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId }));
      for (const { ShardId } of StreamDescription?.Shards ?? []) {
        const shardId = ShardId as string;
        if (this.seen.has(shardId)) continue;
        const shard: Shard = { iterator: undefined, skipping: skipExisting };
        shard.iterator = await this.iterator(streamArn, shardId, shard);
        this.seen.add(shardId);
        this.shards.set(shardId, shard);
      }
      ExclusiveStartShardId = StreamDescription?.LastEvaluatedShardId;
    } while (ExclusiveStartShardId);
  }

  private async iterator(streamArn: string, shardId: string, shard: Shard): Promise<string | undefined> {
    const { ShardIterator } = await this.streams.send(
      new GetShardIteratorCommand({
        StreamArn: streamArn,
        ShardId: shardId,
        ...(shard.lastSequenceNumber
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: shard.lastSequenceNumber }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return ShardIterator;
  }

  /**
   * GetRecords as it comes off the wire, which is what Lambda hands the
   * function: the SDK's deserializer turns an empty map (`{"M":{}}`) into
   * `{}`, and creation times into dates.
   */
  private async getRecords(iterator: string): Promise<RawRecordsPage> {
    const response = await fetch(this.options.dynamoEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDBStreams_20120810.GetRecords',
        // DynamoDB Local wants a SigV4-shaped header; it checks no signature.
        authorization: `AWS4-HMAC-SHA256 Credential=local/20200101/${this.region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify({ ShardIterator: iterator, Limit: RECORDS_PER_READ }),
    });
    const body = (await response.json()) as RawRecordsPage & { __type?: string; message?: string; Message?: string };
    if (!response.ok) {
      throw Object.assign(new Error(body.message ?? body.Message ?? `GetRecords: HTTP ${response.status}`), {
        name: body.__type?.split('#').at(-1) ?? 'Error',
      });
    }
    return body;
  }

  /** One read of every open shard, in order, delivered a batch at a time: how many records were read (delivered or skipped). */
  private async pollShards(streamArn: string): Promise<number> {
    let read = 0;
    for (const [shardId, shard] of this.shards) {
      if (this.stopped) break;
      if (!shard.iterator) {
        this.shards.delete(shardId);
        continue;
      }
      let page: RawRecordsPage;
      try {
        page = await this.getRecords(shard.iterator);
      } catch (error) {
        const name = (error as Error).name;
        if (name !== 'TrimmedDataAccessException' && name !== 'ExpiredIteratorException') throw error;
        shard.iterator = await this.iterator(streamArn, shardId, shard);
        continue;
      }
      const records = page.Records ?? [];
      shard.iterator = page.NextShardIterator;
      if (records.length === 0) {
        shard.skipping = false;
        continue;
      }
      if (!shard.skipping) {
        for (let from = 0; from < records.length && !this.stopped; from += this.mapping.batchSize) {
          const batch = records.slice(from, from + this.mapping.batchSize);
          await this.deliver(
            batch.map((r) => lambdaRecord(r, streamArn, this.region)),
            shardId,
            streamArn,
          );
        }
      }
      read += records.length;
      shard.lastSequenceNumber = records.at(-1)?.dynamodb?.SequenceNumber;
    }
    return read;
  }

  private async deliver(batch: DynamoDBRecord[], shardId: string, streamArn: string): Promise<void> {
    const { functionName, maximumRetryAttempts, reportBatchItemFailures } = this.mapping;
    let records = batch;
    // One line per batch, at its first failure: a batch retried for minutes does not flood the output.
    let told = false;
    const tell = (why: string) => {
      if (!told) this.options.log?.(`${functionName}: batch failed, retrying: ${why}`);
      told = true;
    };
    for (let attempt = 0; records.length > 0 && !this.stopped; attempt += 1) {
      let failedFrom = 0;
      try {
        const result = (await this.options.invoke(functionName, { Records: records })) as DynamoDBBatchResponse | undefined;
        const failures = reportBatchItemFailures ? (result?.batchItemFailures ?? []) : [];
        if (failures.length === 0) return;
        tell(`the function reported ${failures.length} of ${records.length} records failed`);
        // Lambda resumes from the lowest failed sequence number; an unknown one fails the whole batch.
        const positions = failures.map((f) => records.findIndex((r) => r.dynamodb?.SequenceNumber === f.itemIdentifier));
        failedFrom = positions.includes(-1) ? 0 : Math.min(...positions);
      } catch (error) {
        tell((error as Error).message);
        failedFrom = 0;
      }
      records = records.slice(failedFrom);
      if (maximumRetryAttempts >= 0 && attempt >= maximumRetryAttempts) {
        this.fail(records, shardId, streamArn);
        return;
      }
      await sleep(Math.min((this.options.retryDelayMs ?? 200) * 2 ** attempt, 5_000));
    }
  }

  /** What Lambda sends an on-failure destination for a stream batch it gave up on. */
  private fail(records: DynamoDBRecord[], shardId: string, streamArn: string): void {
    const { functionName, onFailureQueue, maximumRetryAttempts } = this.mapping;
    this.options.log?.(`${functionName}: gave up on ${records.length} stream records of ${shardId} after ${maximumRetryAttempts} retries`);
    if (!onFailureQueue) return;
    const first = records[0]?.dynamodb;
    const last = records.at(-1)?.dynamodb;
    this.options.queues.send(
      onFailureQueue,
      JSON.stringify({
        requestContext: {
          requestId: crypto.randomUUID(),
          functionArn: functionArn(this.region, functionName),
          condition: 'RetryAttemptsExhausted',
          approximateInvokeCount: maximumRetryAttempts + 1,
        },
        responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
        version: '1.0',
        timestamp: new Date().toISOString(),
        DDBStreamBatchInfo: {
          shardId,
          startSequenceNumber: first?.SequenceNumber,
          endSequenceNumber: last?.SequenceNumber,
          approximateArrivalOfFirstRecord: new Date((first?.ApproximateCreationDateTime ?? 0) * 1000).toISOString(),
          approximateArrivalOfLastRecord: new Date((last?.ApproximateCreationDateTime ?? 0) * 1000).toISOString(),
          batchSize: records.length,
          streamArn,
        },
      }),
    );
  }
}

/**
 * A record as Lambda delivers it. DynamoDB Local writes an empty map in a
 * stream image as `{}`, which no AttributeValue is (and every unmarshaller
 * refuses); it is restored to `{"M":{}}`. An empty list would come out the
 * same way, and is taken for an empty map too.
 */
function lambdaRecord(record: DynamoDBRecord, streamArn: string, region: string): DynamoDBRecord {
  const repair = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    const attribute = value as Record<string, unknown>;
    if (Object.keys(attribute).length === 0) return { M: {} };
    if (attribute.M) return { M: repairImage(attribute.M as Record<string, unknown>) };
    if (Array.isArray(attribute.L)) return { L: attribute.L.map(repair) };
    return attribute;
  };
  const repairImage = (image: Record<string, unknown> | undefined) =>
    image && Object.fromEntries(Object.entries(image).map(([name, value]) => [name, repair(value)]));
  const dynamodb = record.dynamodb ?? {};
  return {
    ...record,
    awsRegion: region,
    eventSourceARN: streamArn,
    dynamodb: {
      ...dynamodb,
      ...(dynamodb.NewImage && { NewImage: repairImage(dynamodb.NewImage) as typeof dynamodb.NewImage }),
      ...(dynamodb.OldImage && { OldImage: repairImage(dynamodb.OldImage) as typeof dynamodb.OldImage }),
    },
  };
}

/** Waits `ms`, or less when `signal` aborts. */
async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, signal && { signal }).catch((error: unknown) => {
    if ((error as Error).name !== 'AbortError') throw error;
  });
}
