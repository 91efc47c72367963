import { Template } from 'aws-cdk-lib/assertions';
import { UserPool } from 'aws-cdk-lib/aws-cognito';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { CellTable } from '../../lib/cell-table.ts';
import { ControlPlaneTable } from '../../lib/control-plane-table.ts';
import { ServiceFunction } from '../../lib/service-function.ts';
import { SharedLayer } from '../../lib/shared-layer.ts';
import { StagePolicies } from '../../lib/stage-policies.ts';
import { bareStacks } from '../support/bare-stack.ts';

const bareStack = bareStacks();

describe('StagePolicies', () => {
  function staged(retainData: boolean) {
    const stack = bareStack();
    const sharedLayer = new SharedLayer(stack, 'SharedLayer');
    new CellTable(stack, 'Data');
    new ControlPlaneTable(stack, 'Registry');
    new UserPool(stack, 'Pool');
    new LogGroup(stack, 'Extra');
    for (const id of ['One', 'Two'])
      new ServiceFunction(stack, id, { entry: 'functions/cell-api/index.ts', description: id, serviceName: id, sharedLayer });
    StagePolicies.applyTo(stack, { retainData, logRetention: 7, metricsNamespace: 'Shop' });
    return Template.fromStack(stack);
  }

  it('keeps and protects every table, user pool and log group where data is retained, and destroys them elsewhere', () => {
    for (const [retainData, policy] of [
      [true, 'Retain'],
      [false, 'Delete'],
    ] as const) {
      const template = staged(retainData);
      for (const type of ['AWS::DynamoDB::GlobalTable', 'AWS::Cognito::UserPool', 'AWS::Logs::LogGroup']) {
        const resources = Object.values(template.findResources(type));
        expect(resources.length, type).toBeGreaterThan(0);
        for (const resource of resources) expect([type, resource.DeletionPolicy, resource.UpdateReplacePolicy]).toEqual([type, policy, policy]);
      }
      for (const table of Object.values(template.findResources('AWS::DynamoDB::GlobalTable'))) {
        expect(table.Properties.Replicas.map((r: any) => r.DeletionProtectionEnabled)).toEqual([retainData]);
      }
      template.allResourcesProperties('AWS::Cognito::UserPool', { DeletionProtection: retainData ? 'ACTIVE' : 'INACTIVE' });
    }
  });

  it('gives every log group the retention and every service function the metrics namespace', () => {
    const template = staged(false);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions.length).toBeGreaterThan(1);
    for (const fn of functions) expect(fn.Properties.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE).toBe('Shop');
  });
});
