import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  CELL_PK,
  CLIENT_PK,
  MAP_PK,
  QUOTA_PK,
  clientItem,
  clientItemSchema,
  clientSortKey,
  cellItemSchema,
  cellSortKey,
  quotaItem,
  quotaItemSchema,
  quotaSortKey,
  versionFromItem,
  versionItem,
  versionItemSchema,
  versionSortKey,
  type CellRecord,
  type CellStatus,
  type ClientBinding,
  type MapVersion,
  type MapVersionSummary,
  type QuotaOverride,
} from '../routing/records.ts';
import { ControlPlaneError, NotFoundError } from './errors.ts';
import { ControlPlaneReader } from '../routing/reader.ts';

export type { RoutingState } from '../routing/reader.ts';

/** Another writer got there first: the version this change was based on is no longer the newest. */
export class MapConflictError extends ControlPlaneError {
  constructor(readonly basedOn: number) {
    super(
      `the map changed while this change was being made: version ${basedOn + 1} was written by another writer. ` +
        'Nothing was written; run the command again.',
    );
  }
}

export class NoQuotaOverrideError extends NotFoundError {
  constructor(readonly tenantId: string) {
    super(`tenant ${tenantId} has no quota of its own: it has the default, and there is nothing to unset`);
  }
}

export class UnknownCellError extends NotFoundError {
  constructor(readonly cellId: string) {
    super(`no cell "${cellId}" is registered`);
  }
}

/** A map version has to fit in one DynamoDB item (400 KB); this leaves room for attribute overhead. */
export const MAX_VERSION_BYTES = 380_000;

/**
 * The control plane's table as the operator's tools and the deploy see it:
 * the reads of ControlPlaneReader, and every write (map versions, cell
 * status, registration, client bindings). Key design: records.ts.
 */
export class ControlPlaneStore extends ControlPlaneReader {
  /** The newest versions first, without their bucket maps. */
  async listVersions(limit = 20): Promise<MapVersionSummary[]> {
    const { Items = [] } = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': MAP_PK },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return Items.map((item) => {
      const { cells: _cells, buckets: _buckets, ...summary } = versionItemSchema.parse(item);
      return summary;
    });
  }

  /** One version, bucket map and all; undefined if there is no such version. */
  async readVersion(version: number): Promise<MapVersion | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: MAP_PK, sk: versionSortKey(version) } }));
    return Item ? versionFromItem(Item) : undefined;
  }

  /**
   * Writes `next` as the version after `basedOn`: a conditional put that
   * fails when that version already exists, so a change made from a stale
   * read is refused (MapConflictError) and nothing is overwritten. Every
   * cell the new version names must be registered.
   */
  async writeVersion(basedOn: number, next: Omit<MapVersion, 'version'>, registry: readonly CellRecord[]): Promise<MapVersion> {
    const known = new Set(registry.map((cell) => cell.cellId));
    const named = new Set([...next.map, ...Object.values(next.overrides)]);
    const unknown = [...named].filter((cellId) => !known.has(cellId));
    if (unknown.length) throw new UnknownCellError(unknown.join(', '));
    const version: MapVersion = { ...next, version: basedOn + 1 };
    const item = versionItem(version);
    const size = Buffer.byteLength(JSON.stringify(item));
    if (size > MAX_VERSION_BYTES) {
      throw new ControlPlaneError(
        `map version ${version.version} would be ${Math.round(size / 1000)} KB, over the ${MAX_VERSION_BYTES / 1000} KB a version item may hold; ` +
          `it has ${Object.keys(next.overrides).length} overrides: unpin tenants that no longer need it`,
      );
    }
    try {
      await this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new MapConflictError(basedOn);
      throw error;
    }
    return version;
  }

  /** Sets a registered cell's status; UnknownCellError when it is not registered. */
  async setStatus(cellId: string, status: CellStatus): Promise<CellRecord> {
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: CELL_PK, sk: cellSortKey(cellId) },
          UpdateExpression: 'SET #status = :status, updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': status, ':now': new Date().toISOString() },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return cellItemSchema.parse(Attributes);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new UnknownCellError(cellId);
      throw error;
    }
  }

  /** Binds a new app client to its tenant; a client id is bound once. */
  async bindClient(binding: ClientBinding): Promise<void> {
    await this.doc.send(new PutCommand({ TableName: this.tableName, Item: clientItem(binding), ConditionExpression: 'attribute_not_exists(pk)' }));
  }

  /** Every bound client, or those of one tenant. */
  listClients(tenantId?: string): Promise<ClientBinding[]> {
    return this.queryAll(
      {
        KeyConditionExpression: 'pk = :pk',
        ...(tenantId !== undefined && { FilterExpression: 'tenantId = :tenant' }),
        ExpressionAttributeValues: { ':pk': CLIENT_PK, ...(tenantId !== undefined && { ':tenant': tenantId }) },
      },
      (item) => clientItemSchema.parse(item),
    );
  }

  async unbindClient(clientId: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: CLIENT_PK, sk: clientSortKey(clientId) } }));
  }

  /** Gives a tenant its own quota, in place of the default; the router takes it at its next refresh. */
  async setQuota(quota: QuotaOverride): Promise<void> {
    await this.doc.send(new PutCommand({ TableName: this.tableName, Item: quotaItem(quota) }));
  }

  /** Takes a tenant's own quota away: the default applies again. */
  async unsetQuota(tenantId: string): Promise<QuotaOverride> {
    try {
      const { Attributes } = await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: QUOTA_PK, sk: quotaSortKey(tenantId) },
          ConditionExpression: 'attribute_exists(pk)',
          ReturnValues: 'ALL_OLD',
        }),
      );
      return quotaItemSchema.parse(Attributes);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new NoQuotaOverrideError(tenantId);
      throw error;
    }
  }
}
