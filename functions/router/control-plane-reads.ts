import { marshall, unmarshall, type NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { RoutingState } from '../../routing/reader.ts';
import {
  cellItemSchema,
  LATEST_VERSION_QUERY,
  QUOTAS_QUERY,
  quotaItemSchema,
  REGISTRY_QUERY,
  versionFromItem,
  type CellRecord,
  type QuotaOverride,
} from '../../routing/records.ts';
import type { AwsApi } from './aws-api.ts';

type ReadQuery = { readonly ExpressionAttributeValues: Record<string, NativeAttributeValue> };

interface QueryOutput {
  readonly Items?: Array<Record<string, AttributeValue>>;
  readonly LastEvaluatedKey?: Record<string, AttributeValue>;
}

/**
 * The router's three reads of the control plane (the registry, the newest
 * map version and the quota overrides), the same queries `ControlPlaneReader` sends through the
 * SDK's document client (`records.ts`), sent as signed DynamoDB API calls.
 */
export class ControlPlaneReads {
  constructor(
    private readonly dynamodb: AwsApi,
    readonly tableName: string,
  ) {}

  async readRouting(): Promise<RoutingState> {
    const [cells, version, quotas] = await Promise.all([
      this.#all(REGISTRY_QUERY, (item): CellRecord => cellItemSchema.parse(item)),
      this.#latestVersion(),
      this.#all(QUOTAS_QUERY, (item): QuotaOverride => quotaItemSchema.parse(item)),
    ]);
    return { cells, version, quotas };
  }

  /** Every item of a partition, page by page. */
  async #all<T>(query: ReadQuery, parse: (item: unknown) => T): Promise<T[]> {
    const items: T[] = [];
    let startKey: QueryOutput['LastEvaluatedKey'];
    do {
      const page = await this.#query(query, startKey);
      for (const item of page.Items ?? []) items.push(parse(unmarshall(item)));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  async #latestVersion() {
    const { Items } = await this.#query(LATEST_VERSION_QUERY);
    return Items?.[0] ? versionFromItem(unmarshall(Items[0])) : undefined;
  }

  async #query(query: ReadQuery, startKey?: Record<string, AttributeValue>): Promise<QueryOutput> {
    const body = {
      TableName: this.tableName,
      ...query,
      ExpressionAttributeValues: marshall(query.ExpressionAttributeValues),
      ...(startKey && { ExclusiveStartKey: startKey }),
    };
    const response = await this.dynamodb.post({
      path: '/',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.Query' },
      body: JSON.stringify(body),
    });
    return JSON.parse(response.body) as QueryOutput;
  }
}
