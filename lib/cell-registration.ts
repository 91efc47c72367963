import { ArnFormat, Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import { PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { deregistrationRequest, registrationRequest, type CellRegistration as Registration } from '../control-plane/records.ts';
import { SdkCall } from './sdk-call.ts';

export interface CellRegistrationProps {
  /** The SSM parameter that holds the control-plane table's name. */
  readonly controlPlaneTableParameter: string;
  /** What the cell registers: its id, weight, API function ARN and table name. */
  readonly cell: Registration;
}

/**
 * Registers the cell in the control plane's registry on every deploy and
 * removes it when the cell stack is deleted. The control-plane table is
 * found by its well-known SSM parameter at deploy time, so the cell stack
 * holds no reference to the control-plane stack and deploys alone.
 */
export class CellRegistration extends Construct {
  constructor(scope: Construct, id: string, props: CellRegistrationProps) {
    super(scope, id);
    const tableName = StringParameter.valueForStringParameter(this, props.controlPlaneTableParameter);
    const tableArn = Stack.of(this).formatArn({
      service: 'dynamodb',
      resource: 'table',
      resourceName: tableName,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const physicalResourceId = PhysicalResourceId.of(`cell-registration-${props.cell.cellId}`);
    new SdkCall(this, 'Register', {
      onCreateOrUpdate: {
        service: 'DynamoDB',
        action: 'updateItem',
        parameters: registrationRequest(tableName, props.cell),
        physicalResourceId,
      },
      onDelete: {
        service: 'DynamoDB',
        action: 'deleteItem',
        parameters: deregistrationRequest(tableName, props.cell.cellId),
        physicalResourceId,
      },
      statements: [new PolicyStatement({ actions: ['dynamodb:UpdateItem', 'dynamodb:DeleteItem'], resources: [tableArn] })],
    });
  }
}
