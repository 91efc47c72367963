import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { pkSkTable } from './pk-sk-table.ts';

/**
 * Where the router's instances write their heartbeats and count each other
 * (functions/router/router-fleet.ts), so that each enforces its share of
 * every tenant's quota. Items expire by DynamoDB's TTL; nothing in it
 * outlives a minute, so it needs no backup beyond the table's defaults.
 */
export class RouterFleetTable extends Construct {
  public readonly table: TableV2;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = pkSkTable(this, 'Table', { timeToLiveAttribute: 'expiresAt' });
  }

  /** A heartbeat (PutItem) and the count (Query), nothing else. */
  grantHeartbeat(grantee: IGrantable): Grant {
    return this.table.grant(grantee, 'dynamodb:PutItem', 'dynamodb:Query');
  }
}
