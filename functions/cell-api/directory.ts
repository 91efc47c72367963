import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DIRECTORY_ENTITY, directoryKey } from '@item-master/shared';
import { bucketOf } from '../../routing/routing.ts';

/** Tenants an instance remembers having recorded; past this, the oldest are forgotten (and recorded again, harmlessly). */
const REMEMBERED = 10_000;

/**
 * The cell's tenant directory, as the cell API keeps it: before a tenant's
 * first write through this instance, a conditional put of its entry (a no-op
 * when another instance wrote it first); after that, nothing. A failed
 * recording fails the request before anything of the tenant is written.
 */
export class TenantDirectory {
  private readonly recorded = new Set<string>();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async record(tenantId: string): Promise<void> {
    if (this.recorded.has(tenantId)) return;
    const bucket = bucketOf(tenantId);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...directoryKey(bucket, tenantId), entity: DIRECTORY_ENTITY, tenantId, bucket, recordedAt: this.now().toISOString() },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    if (this.recorded.size >= REMEMBERED) this.recorded.delete(this.recorded.values().next().value as string);
    this.recorded.add(tenantId);
  }
}
