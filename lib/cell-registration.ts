import { PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { deregistrationRequest, registrationRequest, type CellRegistration as Registration } from '../routing/records.ts';
import { ControlPlaneTableReference } from './control-plane-table.ts';
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
    const controlPlane = ControlPlaneTableReference.fromParameter(this, props.controlPlaneTableParameter);
    const tableName = controlPlane.tableName;
    const physicalResourceId = PhysicalResourceId.of(`cell-registration-${props.cell.cellId}`);
    const call = new SdkCall(this, 'Register', {
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
    });
    controlPlane.grantRegister(call);
  }
}
