import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { CLIENT_PK } from '../control-plane/records.ts';
import { pkSkTable } from './pk-sk-table.ts';

export interface ControlPlaneTableProps {
}

/**
 * The control plane's table: the cell registry and the versioned bucket map
 * with its overrides. Its key design is documented with the code that reads
 * and writes it, `control-plane/records.ts`. On-demand capacity and
 * point-in-time recovery: the map's history is the routing's audit trail.
 */
export class ControlPlaneTable extends Construct {
  public readonly table: TableV2;

  constructor(scope: Construct, id: string, props: ControlPlaneTableProps = {}) {
    super(scope, id);
    this.table = pkSkTable(this, 'Table');
  }

  /** The router's reads: the registry and the newest map version, nothing else. */
  grantRoutingRead(grantee: IGrantable): Grant {
    return this.table.grant(grantee, 'dynamodb:Query', 'dynamodb:GetItem');
  }

  /** Reading client bindings, and only those: items outside the client partition stay out of reach. */
  grantClientLookup(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:GetItem'],
      resourceArns: [this.table.tableArn],
      conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [CLIENT_PK] } },
    });
  }
}
