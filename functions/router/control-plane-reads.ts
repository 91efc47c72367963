import { marshall, unmarshall, type NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { RoutingState } from '../../control-plane/reader.ts';
import { cellItemSchema, LATEST_VERSION_QUERY, REGISTRY_QUERY, versionFromItem, type CellRecord } from '../../control-plane/records.ts';
import type { AwsApi } from './aws-api.ts';

interface QueryOutput {
  readonly Items?: Array<Record<string, AttributeValue>>;
  readonly LastEvaluatedKey?: Record<string, AttributeValue>;
}

/**
 * The router's two reads of the control plane (the registry and the newest
 * map version), the same queries `ControlPlaneReader` sends through the
 * SDK's document client (`records.ts`), sent as signed DynamoDB API calls.
 */
export class ControlPlaneReads {
  constructor(
    private readonly dynamodb: AwsApi,
    readonly tableName: string,
  ) {}

  async readRouting(): Promise<RoutingState> {
    const [cells, version] = await Promise.all([this.#listCells(), this.#latestVersion()]);
    return { cells, version };
  }

  async #listCells(): Promise<CellRecord[]> {
    const cells: CellRecord[] = [];
    let startKey: QueryOutput['LastEvaluatedKey'];
    do {
      const page = await this.#query(REGISTRY_QUERY, startKey);
      for (const item of page.Items ?? []) cells.push(cellItemSchema.parse(unmarshall(item)));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return cells;
  }

  async #latestVersion() {
    const { Items } = await this.#query(LATEST_VERSION_QUERY);
    return Items?.[0] ? versionFromItem(unmarshall(Items[0])) : undefined;
  }

  async #query(
    query: { readonly ExpressionAttributeValues: Record<string, NativeAttributeValue> },
    startKey?: Record<string, AttributeValue>,
  ): Promise<QueryOutput> {
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
