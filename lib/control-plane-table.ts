import { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { CELL_PK, CLIENT_PK } from '../routing/records.ts';
import { pkSkTable } from './pk-sk-table.ts';

/**
 * The control plane's table: the cell registry and the versioned bucket map
 * with its overrides. Its key design is documented with the code that reads
 * and writes it, `routing/records.ts`. On-demand capacity and
 * point-in-time recovery: the map's history is the routing's audit trail.
 */
export class ControlPlaneTable extends Construct {
  public readonly table: TableV2;

  constructor(scope: Construct, id: string) {
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

/**
 * The control-plane table as a cell finds it: by its well-known SSM
 * parameter at deploy time, never by a reference to the control-plane
 * stack, with the rights a cell may have on it.
 */
export class ControlPlaneTableReference {
  static fromParameter(scope: Construct, parameterName: string): ControlPlaneTableReference {
    const table = TableV2.fromTableName(scope, 'ControlPlaneTable', StringParameter.valueForStringParameter(scope, parameterName));
    return new ControlPlaneTableReference(table.tableName, table.tableArn);
  }

  private constructor(
    public readonly tableName: string,
    public readonly tableArn: string,
  ) {}

  /** Writing and removing registry records, and only those: the bucket map and the client bindings stay out of reach. */
  grantRegister(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      resourceArns: [this.tableArn],
      conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [CELL_PK] } },
    });
  }
}
