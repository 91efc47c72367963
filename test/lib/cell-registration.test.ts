import { Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import { CellRegistration } from '../../lib/cell-registration.ts';
import { ControlPlaneTableReference } from '../../lib/control-plane-table.ts';
import { bareStacks, rights } from '../support/bare-stack.ts';

const bareStack = bareStacks();

describe('CellRegistration', () => {
  it('finds the control-plane table by SSM and may write registry records only, and only once its grant exists', () => {
    const stack = bareStack();
    new CellRegistration(stack, 'Registration', {
      controlPlaneTableParameter: '/shop/dev/control-plane/table-name',
      cell: {
        cellId: 'north',
        weight: 2,
        apiFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:shop-dev-north-api',
        tableName: 'cell-table',
      },
    });
    const template = Template.fromStack(stack);
    const parameters = Object.values(template.toJSON().Parameters ?? {}).map((p: any) => p.Default);
    expect(parameters).toContain('/shop/dev/control-plane/table-name');
    const granted = rights(template, 'RegistrationRegisterRole').filter((r) => r.actions[0]!.startsWith('dynamodb:'));
    expect(granted).toEqual([
      {
        actions: ['dynamodb:DeleteItem', 'dynamodb:UpdateItem'],
        resource: expect.stringMatching(/:table\/.*controlplanetablename/),
        condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['CELL'] } },
      },
    ]);
    // The call waits for its role's policy, so it never runs before its grant.
    const [call] = Object.values(template.findResources('Custom::AWS'));
    expect(call!.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^RegistrationRegisterRoleDefaultPolicy/)]));
  });

  it('grants any grantee the same: registry records, no other partition', () => {
    const stack = bareStack();
    const role = new Role(stack, 'Cell', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    expect(ControlPlaneTableReference.fromParameter(stack, '/shop/dev/control-plane/table-name').grantRegister(role).success).toBe(true);
    expect(rights(Template.fromStack(stack), 'Cell')).toEqual([
      expect.objectContaining({ condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['CELL'] } } }),
    ]);
  });
});
