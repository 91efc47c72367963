import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { seedRequest } from '../routing/records.ts';
import { SdkCall } from './sdk-call.ts';

export interface RoutingSeedProps {
  /** The control-plane table. */
  readonly table: ITableV2;
  /** The cells the first map splits the buckets over. */
  readonly cellIds: readonly string[];
}

/**
 * Writes version 1 of the bucket map on the control plane's first deploy,
 * and never again: the put is conditional on no version 1 existing, so a
 * later deploy with more cells moves no bucket (adding buckets to a cell is
 * a planned rebalance).
 */
export class RoutingSeed extends Construct {
  constructor(scope: Construct, id: string, props: RoutingSeedProps) {
    super(scope, id);
    const call = new SdkCall(this, 'Put', {
      onCreateOrUpdate: {
        service: 'DynamoDB',
        action: 'putItem',
        parameters: seedRequest(props.table.tableName, props.cellIds),
        physicalResourceId: PhysicalResourceId.of('routing-seed'),
        ignoreErrorCodesMatching: 'ConditionalCheckFailedException',
      },
    });
    props.table.grant(call, 'dynamodb:PutItem');
  }
}
