import { StreamViewType, type TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { pkSkTable } from './pk-sk-table.ts';

/**
 * The single table of a cell: items now, orders later, all of one tenant
 * under one partition key. The key design and its reasons are documented
 * with the code that builds the keys, `layers/shared/src/contracts/cell-table.ts`.
 *
 * - `pk` (S) partition key, `sk` (S) sort key; no local index, so an item
 *   collection has no 10 GB cap and can split across partitions when hot.
 * - On-demand capacity, point-in-time recovery, and a stream with new and old
 *   images for the cell's change publisher.
 * - No fixed name, so cells (and stages) deploy side by side in one account.
 */
export class CellTable extends Construct {
  public readonly table: TableV2;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = pkSkTable(this, 'Table', { dynamoStream: StreamViewType.NEW_AND_OLD_IMAGES });
  }

  /**
   * The reads and writes the cell API makes (items, new orders, and the
   * batch read of an order's items), and nothing else (no scan, no table admin).
   */
  grantApiAccess(grantee: IGrantable): Grant {
    return this.table.grant(
      grantee,
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
      'dynamodb:Query',
    );
  }
}
