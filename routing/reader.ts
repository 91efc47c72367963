import { DynamoDBDocumentClient, GetCommand, QueryCommand, type QueryCommandInput, paginateQuery } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CELL_PK,
  CLIENT_PK,
  LATEST_VERSION_QUERY,
  QUOTA_PK,
  QUOTAS_QUERY,
  REGISTRY_QUERY,
  cellItemSchema,
  cellSortKey,
  clientItemSchema,
  clientSortKey,
  quotaItemSchema,
  quotaSortKey,
  versionFromItem,
  type CellRecord,
  type ClientBinding,
  type MapVersion,
  type QuotaOverride,
} from './records.ts';

/** The newest map version and the registry, as the router and the CLI read them. */
export interface RoutingState {
  readonly cells: readonly CellRecord[];
  /** Undefined only before the control plane's first deploy has seeded version 1. */
  readonly version: MapVersion | undefined;
  /** Every tenant's quota override. */
  readonly quotas: readonly QuotaOverride[];
}

/**
 * What the data plane reads of the control plane's table: the registry and
 * the newest map version (the router), a client's tenant binding (the token
 * hook). Nothing here writes, so the functions that bundle it carry none of
 * the operator's operations (store.ts). Key design: records.ts.
 */
export class ControlPlaneReader {
  protected readonly doc: DynamoDBDocumentClient;

  constructor(
    protected readonly client: DynamoDBClient,
    readonly tableName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
  }

  listCells(): Promise<CellRecord[]> {
    return this.queryAll(REGISTRY_QUERY, (item) => cellItemSchema.parse(item));
  }

  /** Every item a query of one partition finds, page by page, each parsed. */
  protected async queryAll<T>(query: Omit<QueryCommandInput, 'TableName'>, parse: (item: unknown) => T): Promise<T[]> {
    const found: T[] = [];
    for await (const page of paginateQuery({ client: this.doc }, { TableName: this.tableName, ...query })) {
      for (const item of page.Items ?? []) found.push(parse(item));
    }
    return found;
  }

  async getCell(cellId: string): Promise<CellRecord | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: CELL_PK, sk: cellSortKey(cellId) }, ConsistentRead: true }),
    );
    return Item ? cellItemSchema.parse(Item) : undefined;
  }

  async latestVersion(): Promise<MapVersion | undefined> {
    const { Items } = await this.doc.send(new QueryCommand({ TableName: this.tableName, ...LATEST_VERSION_QUERY }));
    return Items?.[0] ? versionFromItem(Items[0]) : undefined;
  }

  listQuotas(): Promise<QuotaOverride[]> {
    return this.queryAll(QUOTAS_QUERY, (item) => quotaItemSchema.parse(item));
  }

  async getQuota(tenantId: string): Promise<QuotaOverride | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: QUOTA_PK, sk: quotaSortKey(tenantId) }, ConsistentRead: true }),
    );
    return Item ? quotaItemSchema.parse(Item) : undefined;
  }

  /** Everything the router needs, in three reads. */
  async readRouting(): Promise<RoutingState> {
    const [cells, version, quotas] = await Promise.all([this.listCells(), this.latestVersion(), this.listQuotas()]);
    return { cells, version, quotas };
  }

  async clientBinding(clientId: string): Promise<ClientBinding | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: CLIENT_PK, sk: clientSortKey(clientId) }, ConsistentRead: true }),
    );
    return Item ? clientItemSchema.parse(Item) : undefined;
  }
}
