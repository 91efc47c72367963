import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ControlPlaneTable } from '../../lib/control-plane-table.ts';
import { MoveWorkflow } from '../../lib/move-workflow.ts';
import { SharedLayer } from '../../lib/shared-layer.ts';
import { bareStacks, app, rights, functionOf } from '../support/bare-stack.ts';

const bareStack = bareStacks();

describe('MoveWorkflow', () => {
  function workflow() {
    const stack = bareStack();
    const sharedLayer = new SharedLayer(stack, 'SharedLayer');
    const table = new ControlPlaneTable(stack, 'Registry');
    new MoveWorkflow(stack, 'Moves', { app, sharedLayer, table });
    return Template.fromStack(stack);
  }

  it('steps a move until the mover says done, waiting as told, and retries a failed step', () => {
    const template = workflow();
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    // The definition with its tokens (the mover's ARN) blanked.
    const states = JSON.parse(
      machine!.Properties.DefinitionString['Fn::Join'][1].map((p: unknown) => (typeof p === 'string' ? p : 'x')).join(''),
    ).States;
    expect(states.Step).toMatchObject({
      Type: 'Task',
      Next: 'Done?',
      ResultPath: '$.outcome',
      Retry: expect.arrayContaining([expect.objectContaining({ ErrorEquals: ['States.ALL'], MaxAttempts: 10 })]),
    });
    expect(states['Done?'].Choices).toEqual([
      { Variable: '$.outcome.next', StringEquals: 'done', Next: 'MoveEnded' },
      { Variable: '$.outcome.next', StringEquals: 'wait', Next: 'WaitAsTold' },
    ]);
    expect(states['Done?'].Default).toBe('Step');
    expect(states.WaitAsTold).toEqual({ Type: 'Wait', SecondsPath: '$.outcome.seconds', Next: 'Step' });
    expect(functionOf(template, 'MovesMover').Properties.Environment.Variables.CONTROL_PLANE_TABLE).toEqual({
      Ref: expect.stringMatching(/^RegistryTable/),
    });
  });

  it("may use the control plane's table and this stage's cell tables, and no other table", () => {
    const granted = rights(workflow(), 'MovesMoverRole').filter((r) => !/^(logs|xray):/.test(r.actions[0]!));
    expect(granted).toEqual([
      expect.objectContaining({ resource: expect.stringMatching(/RegistryTable.*"Arn"/) }),
      {
        actions: ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'],
        resource: expect.stringMatching(/:table\/shop-dev-\*"/),
      },
    ]);
  });
});
