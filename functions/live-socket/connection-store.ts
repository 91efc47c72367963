import { BatchWriteCommand, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import pMap from 'p-map';
import { MAX_CONNECTION_SECONDS, TENANT_INDEX, TTL_ATTRIBUTE } from '@item-master/shared';

/** Records of the connections table; the schema is layers/shared/src/contracts/connections.ts. */
const connectionKey = (connectionId: string) => ({ pk: `CONN#${connectionId}`, sk: 'CONNECTION' });
const topicKey = (connectionId: string, topic: string) => ({ pk: `CONN#${connectionId}`, sk: `TOPIC#${topic}` });

export interface Connection {
  connectionId: string;
  tenantId: string;
  connectedAt: string;
  expiresAt: number;
}

/** One connection following one topic. */
export interface Subscription {
  topic: string;
  connectionId: string;
}

/** The connections following any of the topics, each once. */
export function subscribersOf(subscriptions: readonly Subscription[], topics: readonly string[]): string[] {
  const wanted = new Set(topics);
  return [...new Set(subscriptions.filter(({ topic }) => wanted.has(topic)).map(({ connectionId }) => connectionId))];
}

export class ConnectionStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async open(connectionId: string, tenantId: string): Promise<Connection> {
    const now = this.now();
    const connection: Connection = {
      connectionId,
      tenantId,
      connectedAt: now.toISOString(),
      expiresAt: Math.floor(now.getTime() / 1000) + MAX_CONNECTION_SECONDS,
    };
    await this.doc.send(new PutCommand({ TableName: this.tableName, Item: { ...connectionKey(connectionId), ...connection } }));
    return connection;
  }

  async get(connectionId: string): Promise<Connection | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: connectionKey(connectionId), ConsistentRead: true }));
    return Item ? this.openConnection(Item) : undefined;
  }

  /** The open connection (if it is) and its topics, in one read of its partition. */
  async state(connectionId: string): Promise<{ connection: Connection | undefined; topics: string[] }> {
    const records = await this.partition(connectionId);
    const record = records.find((r) => r.sk === connectionKey(connectionId).sk);
    return {
      connection: record ? this.openConnection(record) : undefined,
      topics: records.filter((r) => r.sk.startsWith('TOPIC#')).map((r) => r.sk.slice('TOPIC#'.length)),
    };
  }

  /** Adds topics to an open connection. */
  async subscribe(connection: Connection, topics: readonly string[]): Promise<void> {
    const writes = topics.map((topic) => ({
      PutRequest: {
        Item: {
          ...topicKey(connection.connectionId, topic),
          tenantId: connection.tenantId,
          topic,
          connectionId: connection.connectionId,
          [TTL_ATTRIBUTE]: connection.expiresAt,
        },
      },
    }));
    await this.batchWrite(writes);
  }

  async unsubscribe(connectionId: string, topics: readonly string[]): Promise<void> {
    await this.batchWrite(topics.map((topic) => ({ DeleteRequest: { Key: topicKey(connectionId, topic) } })));
  }

  /** The connection's topics. */
  async topics(connectionId: string): Promise<string[]> {
    return (await this.state(connectionId)).topics;
  }

  /** Removes the connection and everything it subscribed to. */
  async close(connectionId: string): Promise<void> {
    const records = await this.partition(connectionId);
    await this.batchWrite(records.map(({ pk, sk }) => ({ DeleteRequest: { Key: { pk, sk } } })));
  }

  /** Connection ids of the tenant subscribed to any of the topics, each once. */
  async subscribers(tenantId: string, topics: readonly string[]): Promise<string[]> {
    return subscribersOf(await this.subscriptions(tenantId), topics);
  }

  /** Every subscription of the tenant's connections (eventually consistent: the index's). */
  async subscriptions(tenantId: string): Promise<Subscription[]> {
    const found: Subscription[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: TENANT_INDEX.name,
          KeyConditionExpression: 'tenantId = :tenantId',
          ExpressionAttributeValues: { ':tenantId': tenantId },
          ProjectionExpression: 'topic, connectionId',
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) found.push({ topic: String(item.topic), connectionId: String(item.connectionId) });
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return found;
  }

  /** The connection record, unless TTL has yet to delete it (it deletes lazily: expired is gone for us). */
  private openConnection(record: Record<string, unknown>): Connection | undefined {
    const { pk: _pk, sk: _sk, ...connection } = record as unknown as Connection & { pk: string; sk: string };
    return connection.expiresAt * 1000 > this.now().getTime() ? connection : undefined;
  }

  private async partition(connectionId: string): Promise<Array<Record<string, unknown> & { pk: string; sk: string }>> {
    const records: Array<Record<string, unknown> & { pk: string; sk: string }> = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': connectionKey(connectionId).pk },
          ConsistentRead: true,
          ExclusiveStartKey,
        }),
      );
      records.push(...((page.Items ?? []) as Array<Record<string, unknown> & { pk: string; sk: string }>));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return records;
  }

  /** BatchWriteItem in 25s, resending what DynamoDB leaves unprocessed (with backoff). */
  private async batchWrite(requests: Array<Record<string, unknown>>): Promise<void> {
    const chunks: Array<Array<Record<string, unknown>>> = [];
    for (let i = 0; i < requests.length; i += 25) chunks.push(requests.slice(i, i + 25));
    await pMap(
      chunks,
      async (chunk) => {
        let pending = chunk;
        for (let attempt = 0; pending.length > 0; attempt += 1) {
          if (attempt === 5) throw new Error(`${pending.length} writes stayed unprocessed`);
          if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
          const result = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: pending as never } }));
          pending = (result.UnprocessedItems?.[this.tableName] ?? []) as Array<Record<string, unknown>>;
        }
      },
      { concurrency: 4 },
    );
  }
}
