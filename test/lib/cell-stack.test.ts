import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/synth.ts';
import {
  type Resources,
  serviceFunction,
  serviceFunctionId,
  sdkCalls,
  referencedIds,
  policyStatements,
  watchedBy,
  synthesizedApp,
  UNBUNDLED,
} from '../support/templates.ts';

const app = synthesizedApp();

describe('cell stacks', () => {
  it('each have a table with pk/sk keys, on-demand, PITR and a new-and-old-images stream', () => {
    for (const template of Object.values(app.cells)) {
      template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
        Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
      });
      // No fixed table name: two cells (or stages) never collide.
      template.hasResourceProperties('AWS::DynamoDB::GlobalTable', { TableName: Match.absent() });
    }
  });

  it('register themselves on deploy and deregister on delete, finding the control plane by its SSM name', () => {
    for (const [cellId, template] of Object.entries(app.cells)) {
      const parameters = template.toJSON().Parameters;
      const [registration] = sdkCalls(template);
      expect(sdkCalls(template)).toHaveLength(1);
      const tableParameter = registration!.create.parameters.TableName.replace(/^<|>$/g, '');
      expect(parameters[tableParameter]).toEqual({
        Type: 'AWS::SSM::Parameter::Value<String>',
        Default: '/item-master/dev/control-plane/table-name',
      });
      expect(registration!.create).toEqual(registration!.update);
      expect(registration!.create).toMatchObject({
        action: 'updateItem',
        parameters: {
          Key: { pk: { S: 'CELL' }, sk: { S: `CELL#${cellId}` } },
          ExpressionAttributeValues: {
            ':cellId': { S: cellId },
            ':weight': { N: '1' },
            // The API's serving alias: the router invokes what CodeDeploy has shifted there.
            ':fn': { S: expect.stringMatching(/^<ApiDeploymentAlias[A-F0-9]+>$/) },
            ':table': { S: expect.stringMatching(/^<DataTable/) },
          },
        },
      });
      expect(registration!.create.parameters.UpdateExpression).toContain('#status = if_not_exists(#status, :active)');
      expect(registration!.delete).toMatchObject({ action: 'deleteItem', parameters: { Key: { sk: { S: `CELL#${cellId}` } } } });
      expect(registration!.actions).toEqual(['dynamodb:DeleteItem', 'dynamodb:UpdateItem']);
    }
    const weighted = buildTestApp({ cells: ['cell-1', 'cell-2'], cellWeights: { 'cell-2': 3 } }, UNBUNDLED);
    try {
      const [registration] = sdkCalls(Template.fromStack(weighted.stacks.cells[1]!));
      expect(registration!.create.parameters.ExpressionAttributeValues[':weight']).toEqual({ N: '3' });
    } finally {
      weighted.cleanup();
    }
  });

  it('deploy after the control plane (an ordering only: no reference to it)', () => {
    for (const stack of app.built.stacks.cells) expect(stack.dependencies).toEqual([app.built.stacks.controlPlane]);
  });

  it('are isolated: no cell template names another cell, imports a value, or grants beyond its own resources', () => {
    for (const [cellId, template] of Object.entries(app.cells)) {
      const json = JSON.stringify(template.toJSON());
      for (const other of Object.keys(app.cells).filter((id) => id !== cellId)) expect(json).not.toContain(other);
      expect(json).not.toContain('Fn::ImportValue');
      const resources = template.toJSON().Resources as Resources;
      for (const statement of policyStatements(template)) {
        for (const resource of [statement.Resource].flat()) {
          if (resource === '*') {
            // Actions with no resource-level permissions: X-Ray, and the state machine's log delivery setup.
            for (const action of [statement.Action].flat())
              expect(action).toMatch(/^(xray:(Put|GetSampling)|logs:(\w+LogDelivery|ListLogDeliveries|Describe\w+|PutResourcePolicy)$)/);
            continue;
          }
          // The ways out of the cell, all by SSM parameter: the control-plane table for registration,
          // and the live-updates connections table and @connections for the publisher.
          if (JSON.stringify(resource).includes('SsmParameterValue')) {
            const target = JSON.stringify(resource);
            if (target.includes('controlplanetablename')) expect(statement.Action).toEqual(['dynamodb:DeleteItem', 'dynamodb:UpdateItem']);
            else if (target.includes('liveconnectionstable'))
              expect(['dynamodb:Query', 'dynamodb:BatchWriteItem']).toEqual(expect.arrayContaining([statement.Action].flat()));
            else expect(target).toMatch(/liveapiid.*\/live\/POST\/@connections\/\*"/);
            continue;
          }
          const named = referencedIds(resource);
          expect(named.length, JSON.stringify(resource)).toBeGreaterThan(0);
          for (const logicalId of named) expect(resources[logicalId], JSON.stringify(resource)).toBeDefined();
        }
      }
    }
  });

  it('each run an order saga: direct DynamoDB and SQS integrations, Lambda only to pay, logging and tracing on', () => {
    const template = app.cells['cell-1']!;
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    expect(machine!.Properties).toMatchObject({
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false },
    });
    const definition = JSON.parse(
      (machine!.Properties.DefinitionString['Fn::Join'][1] as unknown[]).map((part) => (typeof part === 'string' ? part : 'X')).join(''),
    ) as { States: Record<string, any> };
    const states: Record<string, any> = {};
    const collect = (all: Record<string, any>) => {
      for (const [name, state] of Object.entries(all)) {
        states[name] = state;
        for (const branch of state.Branches ?? []) collect(branch.States);
        if (state.ItemProcessor) collect(state.ItemProcessor.States);
      }
    };
    collect(definition.States);
    const resourceOf = (name: string) => String(states[name]?.Resource).replace(/^arnX?/, 'arn');
    expect(resourceOf('Reserve')).toMatch(/:states:::aws-sdk:dynamodb:transactWriteItems$/);
    // The release: line by line, each its own idempotent transaction; a line that cannot be given back is recorded.
    expect(states.ReleaseStock).toMatchObject({ Type: 'Map', ItemsPath: '$.release' });
    expect(resourceOf('ReleaseLine')).toMatch(/:states:::aws-sdk:dynamodb:transactWriteItems$/);
    expect(states.ReleaseLine.Catch).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'RecordStockNotReturned' })]);
    // A conflict with concurrent orders is a TransactionCanceledException too: retried as hard as before the split.
    expect(states.ReleaseLine.Retry).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], MaxAttempts: 6 })]);
    for (const name of ['MarkReserved', 'MarkPaid', 'MarkConfirmed', 'MarkNotReserved', 'MarkReleasedFailed', 'RecordStockNotReturned']) {
      expect(resourceOf(name), name).toMatch(/:states:::dynamodb:updateItem$/);
    }
    expect(resourceOf('NotifyConfirmed')).toMatch(/:states:::sqs:sendMessage$/);
    const lambdaTasks = Object.entries(states).filter(([, state]) => String(state.Resource).includes('lambda'));
    expect(lambdaTasks.map(([name]) => name)).toEqual(['Pay']);
    expect(states.Pay.TimeoutSeconds).toBe(5);
    expect(states.Pay.Retry[0]).toMatchObject({
      ErrorEquals: expect.arrayContaining(['PaymentUnavailable']),
      JitterStrategy: 'FULL',
      BackoffRate: 2,
    });
    expect(states.Pay.Retry[0].ErrorEquals).not.toContain('PaymentDeclined');
    expect(states.Pay.Catch.map((c: any) => c.ErrorEquals[0])).toEqual(['PaymentDeclined', 'States.Timeout', 'States.ALL']);
    expect(states.Confirm.Type).toBe('Parallel');
    // Once stock is reserved, every failure before payment goes through the release.
    expect(states.MarkReserved.Catch).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'ReservationUnrecorded' })]);
    for (const name of ['ReservationUnrecorded', 'PaymentDeclined', 'PaymentTimedOut', 'PaymentFailed', 'PaymentUnrecorded']) {
      expect(states[name].Next, name).toBe('ReleaseStock');
    }
    expect(states.MarkPaid.Catch).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'PaymentUnrecorded' })]);

    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ExecutionsFailed',
      Namespace: 'AWS/States',
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: Object.keys(template.findResources('AWS::StepFunctions::StateMachine'))[0] } }],
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
  });

  it('let the order saga touch only its own cell: UpdateItem and ConditionCheckItem on its table, its payment function, its queue', () => {
    const template = app.cells['cell-2']!;
    const roleId = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0]!.Properties.RoleArn['Fn::GetAtt'][0];
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((policy) => policy.Properties.Roles.some((role: { Ref: string }) => role.Ref === roleId))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
      .filter((statement) => statement.Resource !== '*');
    const ids = (type: string) => Object.keys(template.findResources(type));
    expect(Object.fromEntries(statements.map((s) => [s.Action, [...new Set(referencedIds(s.Resource))]]))).toEqual({
      'dynamodb:UpdateItem': [ids('AWS::DynamoDB::GlobalTable')[0]],
      'dynamodb:ConditionCheckItem': [ids('AWS::DynamoDB::GlobalTable')[0]],
      'lambda:InvokeFunction': [serviceFunctionId(template, 'payment')],
      'sqs:SendMessage': [ids('AWS::SQS::Queue').find((id) => id.startsWith('OrderEvents') && !id.includes('DeadLetters'))],
    });
  });

  it('reserves concurrency for each cell API and the router, within what the account can reserve', () => {
    const router = serviceFunction(app.controlPlane, 'router').Properties.ReservedConcurrentExecutions as number;
    const cellApis = Object.values(app.cells).map(
      (template) => serviceFunction(template, 'cell-api').Properties.ReservedConcurrentExecutions as number,
    );
    expect([router, cellApis]).toEqual([450, [150, 150, 150]]);
    expect(router + cellApis.reduce((a, b) => a + b)).toBeLessThanOrEqual(1000 - 100);
  });

  it("adding a cell adds a stack and changes no other cell's stack but its share of reserved concurrency (none, with cellConcurrency set)", () => {
    const four = app.withFourCells();
    expect(four.stacks.cells).toHaveLength(4);
    const reservation = (template: Template) => serviceFunction(template, 'cell-api').Properties.ReservedConcurrentExecutions as number;
    const withoutReservation = (template: Template) => JSON.stringify(template.toJSON()).replace(/"ReservedConcurrentExecutions":\d+/, '');
    for (const stack of four.stacks.cells.slice(0, 3)) {
      const after = Template.fromStack(stack);
      expect(withoutReservation(after)).toEqual(withoutReservation(app.cells[stack.cellId]!));
      // The default splits half the reservable concurrency over the cells: 450 ÷ 3, then ÷ 4.
      expect([reservation(app.cells[stack.cellId]!), reservation(after)]).toEqual([150, 112]);
    }
  });

  it('keep data in prod: deletion protection and RETAIN on the table, every log group and the access logs', () => {
    const prod = buildTestApp({ stage: 'prod', cells: ['cell-1'] }, UNBUNDLED);
    try {
      const template = Template.fromStack(prod.stacks.cells[0]!);
      template.hasResource('AWS::DynamoDB::GlobalTable', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({ Replicas: [Match.objectLike({ DeletionProtectionEnabled: true })] }),
      });
      expect(prod.stacks.cells[0]!.stackName).toBe('item-master-prod-cell-1');
      const control = Template.fromStack(prod.stacks.controlPlane);
      for (const stack of [template, control]) {
        const logGroups = Object.entries(stack.findResources('AWS::Logs::LogGroup'));
        expect(logGroups.length).toBeGreaterThan(0);
        for (const [id, group] of logGroups) expect([id, group.DeletionPolicy, group.UpdateReplacePolicy]).toEqual([id, 'Retain', 'Retain']);
      }
      // The ALB's access logs: kept, and not emptied on delete.
      const buckets = Object.entries(control.findResources('AWS::S3::Bucket'));
      expect(buckets.length).toBeGreaterThan(0);
      for (const [id, bucket] of buckets) expect([id, bucket.DeletionPolicy]).toEqual([id, 'Retain']);
      expect(control.findResources('Custom::S3AutoDeleteObjects')).toEqual({});
    } finally {
      prod.cleanup();
    }
    for (const template of Object.values(app.cells)) {
      template.hasResource('AWS::DynamoDB::GlobalTable', {
        DeletionPolicy: 'Delete',
        Properties: Match.objectLike({ Replicas: [Match.objectLike({ DeletionProtectionEnabled: false })] }),
      });
    }
  });
});

describe("a cell's health", () => {
  const alarmsOf = (template: Template) => template.findResources('AWS::CloudWatch::Alarm');

  it('has an alarm per sign of sickness, and one composite alarm over all of them, named for the deploy to watch', () => {
    for (const [cellId, template] of Object.entries(app.cells)) {
      const alarms = alarmsOf(template);
      const metrics = watchedBy(alarms);
      expect(metrics).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/100 \* errors \/ invocations/),
          'Throttles',
          'Duration',
          'ExecutionsFailed',
          'ExecutionsTimedOut',
          'IteratorAge',
          'CellErrors',
          'ApproximateNumberOfMessagesVisible',
        ]),
      );
      // Both failure queues: the order events' dead letters and the publisher's failures.
      expect(metrics.filter((m) => m === 'ApproximateNumberOfMessagesVisible')).toHaveLength(2);
      const [composite, ...others] = Object.values(template.findResources('AWS::CloudWatch::CompositeAlarm'));
      expect(others).toEqual([]);
      expect(composite!.Properties.AlarmName).toBe(`item-master-dev-${cellId}-healthy`);
      const rule = JSON.stringify(composite!.Properties.AlarmRule);
      for (const id of Object.keys(alarms)) expect([id, rule.includes(`"${id}"`)]).toEqual([id, true]);
      // A cell without traffic is healthy.
      for (const alarm of Object.values(alarms)) expect(alarm.Properties.TreatMissingData).toBe('notBreaching');
    }
  });

  it("watches the router's 5xx for its own cell, by the metric the router emits", () => {
    for (const [cellId, template] of Object.entries(app.cells)) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'ItemMaster',
        MetricName: 'CellErrors',
        Dimensions: Match.arrayWith([
          { Name: 'cellId', Value: cellId },
          { Name: 'service', Value: 'router' },
        ]),
        Threshold: 5,
      });
    }
  });

  it('takes its thresholds from config, each unset one at its default', () => {
    const tuned = buildTestApp({ alarmThresholds: { apiP99Ms: 1234, router5xx: 50, alb5xx: 30 } }, UNBUNDLED);
    try {
      const template = Template.fromStack(tuned.stacks.cells[0]!);
      const threshold = (of: Template, metricName: string) =>
        Object.values(alarmsOf(of)).find((alarm) => alarm.Properties.MetricName === metricName)!.Properties.Threshold;
      expect(threshold(template, 'Duration')).toBe(1234);
      expect(threshold(template, 'CellErrors')).toBe(50);
      expect(threshold(template, 'IteratorAge')).toBe(60_000);
      // The front door's come from the same key.
      const control = Template.fromStack(tuned.stacks.controlPlane);
      expect(threshold(control, 'HTTPCode_ELB_5XX_Count')).toBe(30);
      expect(threshold(control, 'RoutingRefreshFailures')).toBe(3);
    } finally {
      tuned.cleanup();
    }
  });
});
