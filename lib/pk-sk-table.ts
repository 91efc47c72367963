import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, TableV2, type GlobalSecondaryIndexPropsV2, type StreamViewType } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';

export interface PkSkTableOptions {
  /**
   * A change stream.
   * @default - none
   */
  readonly dynamoStream?: StreamViewType;
  /**
   * The attribute DynamoDB's TTL deletes expired items by.
   * @default - no TTL
   */
  readonly timeToLiveAttribute?: string;
  /** @default - none */
  readonly globalSecondaryIndexes?: GlobalSecondaryIndexPropsV2[];
}

/**
 * The table shape every table of the service shares: `pk` (S) and `sk` (S)
 * keys, on-demand capacity, point-in-time recovery, and no fixed name, so
 * that stacks and stages deploy side by side in one account.
 */
export function pkSkTable(scope: Construct, id: string, options: PkSkTableOptions = {}): TableV2 {
  return new TableV2(scope, id, {
    partitionKey: { name: 'pk', type: AttributeType.STRING },
    sortKey: { name: 'sk', type: AttributeType.STRING },
    billing: Billing.onDemand(),
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    dynamoStream: options.dynamoStream,
    timeToLiveAttribute: options.timeToLiveAttribute,
    globalSecondaryIndexes: options.globalSecondaryIndexes,
    // Kept, and protected from deletion, where the stage's policies say so (lib/stage-policies.ts).
    deletionProtection: false,
    removalPolicy: RemovalPolicy.DESTROY,
  });
}
