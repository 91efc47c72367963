import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { CellApi } from '../../lib/cell-api.ts';
import { bareStacks, rights, functionOf, cellParts } from '../support/bare-stack.ts';

const bareStack = bareStacks();

describe('CellApi', () => {
  it('takes its fixed name, its table and its saga: only the item and order operations, and starting executions', () => {
    const stack = bareStack();
    const { sharedLayer, table, orders } = cellParts(stack);
    new CellApi(stack, 'Api', { cellId: 'north', functionName: 'shop-dev-north-api', sharedLayer, table, orders });
    const template = Template.fromStack(stack);
    const fn = functionOf(template, 'Api');
    expect(fn.Properties.FunctionName).toBe('shop-dev-north-api');
    expect(fn.Properties.Environment.Variables).toMatchObject({
      CELL_ID: 'north',
      POWERTOOLS_SERVICE_NAME: 'cell-api',
      TABLE_NAME: { Ref: expect.stringMatching(/^DataTable/) },
      STATE_MACHINE_ARN: { Ref: expect.stringMatching(/^OrdersStateMachine/) },
    });
    const granted = rights(template, 'ApiRole').filter((r) => !/^(logs|xray):/.test(r.actions[0]!));
    expect(granted).toEqual([
      {
        actions: ['dynamodb:BatchGetItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
        resource: expect.stringMatching(/DataTable.*"Arn"/),
      },
      { actions: ['states:StartExecution'], resource: expect.stringMatching(/OrdersStateMachine/) },
    ]);
  });
});
