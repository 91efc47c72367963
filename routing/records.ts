import type { DeleteItemCommandInput, PutItemCommandInput, UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import '../layers/shared/src/validation.ts';
import * as z from 'zod/mini';
import { decodeBuckets, encodeBuckets } from './bucket-codec.ts';
import type { TenantQuota } from '../layers/shared/src/contracts/quotas.ts';
import { evenSplit, type BucketMap, type Overrides } from './routing.ts';

/**
 * Key design of the control-plane table (one table: the registry and the map):
 *
 * | record      | pk     | sk                         |
 * | ----------- | ------ | -------------------------- |
 * | cell        | `CELL` | `CELL#<cellId>`            |
 * | map version | `MAP`  | `VERSION#<10-digit number>` |
 * | client      | `CLIENT` | `CLIENT#<app client id>` |
 * | quota       | `QUOTA` | `TENANT#<tenantId>`        |
 *
 * - The whole registry is one Query, and so is the newest map version
 *   (descending, limit 1): the router's refresh costs two reads.
 * - A map version is immutable. The next one is a put of `version + 1` on the
 *   condition that it does not exist yet, so of two writers racing from the
 *   same version exactly one wins and nothing is overwritten; old versions
 *   stay for audit and rollback.
 * - A version holds the bucket map (deflated, see bucket-codec.ts) and the
 *   overrides together, so the router always sees a map and the pins that
 *   went with it, and a pin is versioned like any other change.
 * - Both partitions are tiny and read a few times a minute per router
 *   instance; they never approach a partition's limits.
 * - A client record binds a Cognito app client to its tenant. Cognito reads
 *   it (through the token-claims trigger) when the client asks for a token,
 *   once per token, and writes the tenant into the token; nothing reads it
 *   per request.
 * - A quota record overrides config's default quota for one tenant. The
 *   router reads the partition whole with the registry and the map (paged):
 *   the quotas travel with the routing data, and a request costs no read.
 */
export const CELL_PK = 'CELL';
export const MAP_PK = 'MAP';
export const CLIENT_PK = 'CLIENT';
export const QUOTA_PK = 'QUOTA';

export const CELL_STATUSES = ['active', 'draining', 'inactive'] as const;
/**
 * - `active`: serves its tenants and may take more.
 * - `draining`: serves its tenants; a rebalance plan moves them all away.
 * - `inactive`: serves nobody; its tenants get 503 until moved or reactivated.
 */
export type CellStatus = (typeof CELL_STATUSES)[number];

export interface CellRecord {
  readonly cellId: string;
  readonly status: CellStatus;
  /** Relative share of buckets a rebalance gives this cell. */
  readonly weight: number;
  readonly apiFunctionArn: string;
  readonly tableName: string;
  readonly updatedAt?: string;
}

export interface MapVersion {
  readonly version: number;
  readonly map: BucketMap;
  readonly overrides: Overrides;
  /** What changed, in words. */
  readonly change: string;
  readonly by: string;
  readonly createdAt?: string;
}

/** A map version without its (large) bucket map, for listings. */
export type MapVersionSummary = Omit<MapVersion, 'map'>;

/**
 * The two reads the router makes of the table, without the table's name:
 * the registry (one partition, paged) and the newest map version. Values
 * are plain: the document client takes them as they are, the router's
 * signed reader marshals them.
 */
export const REGISTRY_QUERY = {
  KeyConditionExpression: 'pk = :pk',
  ExpressionAttributeValues: { ':pk': CELL_PK },
  ConsistentRead: true,
} as const;

export const LATEST_VERSION_QUERY = {
  KeyConditionExpression: 'pk = :pk',
  ExpressionAttributeValues: { ':pk': MAP_PK },
  ScanIndexForward: false,
  Limit: 1,
  ConsistentRead: true,
} as const;

/** Every per-tenant quota override (one partition, paged). */
export const QUOTAS_QUERY = {
  KeyConditionExpression: 'pk = :pk',
  ExpressionAttributeValues: { ':pk': QUOTA_PK },
  ConsistentRead: true,
} as const;

export function cellSortKey(cellId: string): string {
  return `CELL#${cellId}`;
}

export function versionSortKey(version: number): string {
  return `VERSION#${String(version).padStart(10, '0')}`;
}

export const cellItemSchema = z.object({
  cellId: z.string().check(z.minLength(1)),
  status: z.enum(CELL_STATUSES),
  weight: z.number().check(z.positive()),
  apiFunctionArn: z.string().check(z.minLength(1)),
  tableName: z.string().check(z.minLength(1)),
  updatedAt: z.optional(z.string()),
});

export const versionItemSchema = z.object({
  version: z.int().check(z.positive()),
  cells: z.array(z.string()),
  buckets: z.string(),
  overrides: z._default(z.record(z.string(), z.string()), {}),
  change: z._default(z.string(), ''),
  by: z._default(z.string(), ''),
  createdAt: z.optional(z.string()),
});

export function versionFromItem(item: unknown): MapVersion {
  const { cells, buckets, ...rest } = versionItemSchema.parse(item);
  return { ...rest, map: decodeBuckets({ cells, buckets }) };
}

export function versionItem(version: MapVersion): Record<string, unknown> {
  return {
    pk: MAP_PK,
    sk: versionSortKey(version.version),
    version: version.version,
    ...encodeBuckets(version.map),
    overrides: version.overrides,
    change: version.change,
    by: version.by,
    ...(version.createdAt && { createdAt: version.createdAt }),
  };
}

/** What a cell stack tells the registry about itself on every deploy. */
export interface CellRegistration {
  readonly cellId: string;
  readonly weight: number;
  readonly apiFunctionArn: string;
  readonly tableName: string;
}

/**
 * The registration a cell's deploy makes (the request goes into the cell
 * stack's template as a custom resource, so the values may be CDK tokens).
 * It sets what the deploy owns (weight, function, table) and leaves the
 * status alone when the cell is already registered: a redeploy does not
 * undo an operator's drain.
 */
export function registrationRequest(controlTableName: string, cell: CellRegistration): UpdateItemCommandInput {
  return {
    TableName: controlTableName,
    Key: { pk: { S: CELL_PK }, sk: { S: cellSortKey(cell.cellId) } },
    UpdateExpression: 'SET cellId = :cellId, weight = :weight, apiFunctionArn = :fn, tableName = :table, #status = if_not_exists(#status, :active)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: {
      ':cellId': { S: cell.cellId },
      ':weight': { N: String(cell.weight) },
      ':fn': { S: cell.apiFunctionArn },
      ':table': { S: cell.tableName },
      ':active': { S: 'active' },
    },
  };
}

/** Deleting a cell stack removes it from the registry; its tenants then get 503 until moved. */
export function deregistrationRequest(controlTableName: string, cellId: string): DeleteItemCommandInput {
  return { TableName: controlTableName, Key: { pk: { S: CELL_PK }, sk: { S: cellSortKey(cellId) } } };
}

/**
 * Version 1 of the map, written when the control plane is first deployed:
 * the buckets split evenly over the configured cells. It is written only if
 * no version 1 exists, so later deploys (with more cells, say) move nothing.
 */
export function seedRequest(controlTableName: string, cellIds: readonly string[]): PutItemCommandInput {
  const { cells, buckets } = encodeBuckets(evenSplit(cellIds));
  return {
    TableName: controlTableName,
    Item: {
      pk: { S: MAP_PK },
      sk: { S: versionSortKey(1) },
      version: { N: '1' },
      cells: { L: cells.map((cell) => ({ S: cell })) },
      buckets: { S: buckets },
      overrides: { M: {} },
      change: { S: `initial map: buckets split evenly over ${cellIds.join(', ')}` },
      by: { S: 'deploy' },
    },
    ConditionExpression: 'attribute_not_exists(pk)',
  };
}

/** A Cognito app client bound to the one tenant its tokens may act for. */
export interface ClientBinding {
  readonly clientId: string;
  readonly tenantId: string;
  /** The scopes the client was created with (Cognito enforces them; kept here to list). */
  readonly scopes: readonly string[];
  readonly createdAt: string;
  readonly by: string;
}

export function clientSortKey(clientId: string): string {
  return `CLIENT#${clientId}`;
}

export const clientItemSchema = z.object({
  clientId: z.string().check(z.minLength(1)),
  tenantId: z.string().check(z.minLength(1)),
  scopes: z._default(z.array(z.string()), []),
  createdAt: z._default(z.string(), ''),
  by: z._default(z.string(), ''),
});

export function clientItem(binding: ClientBinding): Record<string, unknown> {
  return { pk: CLIENT_PK, sk: clientSortKey(binding.clientId), ...binding, scopes: [...binding.scopes] };
}

/** A tenant's own quota, in place of config's default (contracts/quotas.ts). */
export interface QuotaOverride extends TenantQuota {
  readonly tenantId: string;
  readonly updatedAt: string;
  readonly by: string;
}

export function quotaSortKey(tenantId: string): string {
  return `TENANT#${tenantId}`;
}

export const quotaItemSchema = z.object({
  tenantId: z.string().check(z.minLength(1)),
  rate: z.number().check(z.positive()),
  burst: z.number().check(z.positive()),
  updatedAt: z._default(z.string(), ''),
  by: z._default(z.string(), ''),
});

export function quotaItem(quota: QuotaOverride): Record<string, unknown> {
  return { pk: QUOTA_PK, sk: quotaSortKey(quota.tenantId), ...quota };
}
