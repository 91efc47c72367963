import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import { UserPool } from 'aws-cdk-lib/aws-cognito';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evenSplit } from '../../routing/routing.ts';
import { snapshotFromShipped } from '../../functions/router/routing-cache.ts';
import { CanaryDeployment, type TrafficShift } from '../../lib/canary-deployment.ts';
import { CellApi } from '../../lib/cell-api.ts';
import { CellRegistration } from '../../lib/cell-registration.ts';
import { CellTable } from '../../lib/cell-table.ts';
import { ChangePublisher } from '../../lib/change-publisher.ts';
import { ControlPlaneTable, ControlPlaneTableReference } from '../../lib/control-plane-table.ts';
import { LiveUpdatesReference } from '../../lib/live-updates.ts';
import { MoveWorkflow } from '../../lib/move-workflow.ts';
import { OrderWorkflow } from '../../lib/order-workflow.ts';
import { RouterFleetTable } from '../../lib/router-fleet.ts';
import { Router, shippedRouting } from '../../lib/router.ts';
import { ServiceFunction } from '../../lib/service-function.ts';
import { SharedLayer } from '../../lib/shared-layer.ts';
import { StagePolicies } from '../../lib/stage-policies.ts';
import { liveParameter } from '../../layers/shared/src/contracts/names.ts';
import { featureFlags } from '../support/synth.ts';

/** Constructs on their own, each in a bare stack: what they grant and read, without the whole app (and without bundling). */
const app = { appName: 'shop', stage: 'dev' } as const;

/** Where the bare apps synthesize: one folder for the file, removed after it (an App without one leaves a folder in the temp dir). */
const outdir = mkdtempSync(path.join(tmpdir(), 'constructs-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

function bareStack(): Stack {
  // cdk.json's feature flags, as the app has them; no stack bundles: the constructs' wiring is under test, not their code.
  const context = { ...featureFlags(), 'aws:cdk:bundling-stacks': [] };
  return new Stack(new App({ outdir: mkdtempSync(path.join(outdir, 'app-')), context }), 'Bare', {
    env: { account: '123456789012', region: 'eu-west-1' },
  });
}

/** The statements of the policies attached to a role whose logical id starts with `rolePrefix`, as actions (sorted) and resource. */
function rights(template: Template, rolePrefix: string): Array<{ actions: string[]; resource: string; condition?: unknown }> {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: { Ref: string }) => role.Ref.startsWith(rolePrefix)))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
    .map((s: any) => ({ actions: [s.Action].flat().sort(), resource: JSON.stringify(s.Resource), ...(s.Condition && { condition: s.Condition }) }));
}

function functionOf(template: Template, idPrefix: string): any {
  const found = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) => id.startsWith(idPrefix));
  expect(found).toHaveLength(1);
  return found[0]![1];
}

/** A cell's parts a construct under test may need. */
function cellParts(stack: Stack) {
  const sharedLayer = new SharedLayer(stack, 'SharedLayer');
  const table = new CellTable(stack, 'Data');
  const payment = new ServiceFunction(stack, 'Payment', {
    entry: 'functions/payment/index.ts',
    description: 'pays',
    serviceName: 'payment',
    sharedLayer,
  });
  const orders = new OrderWorkflow(stack, 'Orders', { table: table.table, paymentFunction: payment, eventsQueue: new Queue(stack, 'Events') });
  return { sharedLayer, table, orders };
}

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

describe('ChangePublisher', () => {
  it("reads its table's stream with partial batch failures, gives up on old changes into its failure queue, and may only publish", () => {
    const stack = bareStack();
    const { sharedLayer, table } = cellParts(stack);
    const failures = new Queue(stack, 'PublishFailures');
    new ChangePublisher(stack, 'Publisher', {
      cellId: 'north',
      sharedLayer,
      table,
      live: LiveUpdatesReference.fromParameters(stack, app),
      failures,
      maxRecordAge: Duration.minutes(10),
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataTable'), 'StreamArn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 600,
      StartingPosition: 'LATEST',
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PublishFailures'), 'Arn'] } } },
    });
    const env = functionOf(template, 'Publisher').Properties.Environment.Variables;
    const parameters = template.toJSON().Parameters;
    expect(parameters[env.CONNECTIONS_TABLE.Ref].Default).toBe(liveParameter(app, 'connections-table'));
    const url = env.CALLBACK_URL['Fn::Join'][1];
    expect([url[0], parameters[url[1].Ref].Default, url.at(-1)]).toEqual(['https://', liveParameter(app, 'api-id'), '/live']);
    const granted = rights(template, 'PublisherRole').filter((r) => !/^(logs|xray):/.test(r.actions[0]!));
    expect(granted).toEqual(
      expect.arrayContaining([
        {
          actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
          resource: expect.stringMatching(/DataTable.*StreamArn/),
        },
        { actions: ['dynamodb:Query'], resource: expect.stringMatching(/liveconnectionstable.*\/index\/ByTenant"/) },
        { actions: ['dynamodb:BatchWriteItem', 'dynamodb:Query'], resource: expect.stringMatching(/liveconnectionstable[^/]*\}\]\]\}$/) },
        { actions: ['execute-api:ManageConnections'], resource: expect.stringMatching(/liveapiid.*\/live\/POST\/@connections\/\*"/) },
        { actions: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'], resource: expect.stringMatching(/PublishFailures/) },
      ]),
    );
    expect(granted).toHaveLength(5);
  });
});

describe('Router', () => {
  function router(cells: readonly string[]) {
    const stack = bareStack();
    const sharedLayer = new SharedLayer(stack, 'SharedLayer');
    const table = new ControlPlaneTable(stack, 'Registry');
    const userPool = new UserPool(stack, 'Pool');
    const fleet = new RouterFleetTable(stack, 'Fleet');
    new Router(stack, 'Router', {
      app,
      cells,
      sharedLayer,
      table,
      identity: { userPool, resourceServerId: 'shop' },
      refreshSeconds: 3,
      fleet,
      defaultQuota: { rate: 40, burst: 90 },
      reservedConcurrency: 300,
    });
    return Template.fromStack(stack);
  }

  it("ships the seed's map, reads the table for the rest, and verifies the pool's tokens", () => {
    const env = functionOf(router(['north', 'south']), 'Router').Properties.Environment.Variables;
    expect(env).toMatchObject({
      CONTROL_PLANE_TABLE: { Ref: expect.stringMatching(/^RegistryTable/) },
      ROUTING_REFRESH_SECONDS: '3',
      USER_POOL_ID: { Ref: expect.stringMatching(/^Pool/) },
      AUTH_RESOURCE_SERVER: 'shop',
      FLEET_TABLE: { Ref: expect.stringMatching(/^FleetTable/) },
      TENANT_RATE: '40',
      TENANT_BURST: '90',
    });
    expect(env.CELL_ID).toBeUndefined();
    const shipped = snapshotFromShipped(env.SHIPPED_ROUTING);
    expect(shipped).toMatchObject({ version: 1, source: 'shipped', overrides: {} });
    expect(shipped.map).toEqual(evenSplit(['north', 'south']));
    expect([...shipped.cells.values()].map((cell) => cell.functionName)).toEqual(['shop-dev-north-api:live', 'shop-dev-south-api:live']);
  });

  it('reserves its concurrency, and counts its instances in a table whose heartbeats expire', () => {
    const template = router(['north']);
    expect(functionOf(template, 'Router').Properties.ReservedConcurrentExecutions).toBe(300);
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', { TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } });
  });

  it('ranks the tenants refused over quota by a Contributor Insights rule on its log lines, not by a metric dimension per tenant', () => {
    const [rule] = Object.values(router(['north']).findResources('AWS::CloudWatch::InsightRule')) as Array<{ Properties: { RuleBody: unknown } }>;
    const body = JSON.stringify(rule!.Properties.RuleBody);
    expect(body).toContain('\\"Keys\\":[\\"$.tenantId\\"]');
    expect(body).toContain('\\"Match\\":\\"$.refusal\\",\\"In\\":[\\"quota\\"]');
  });

  it("may read the registry and the map, beat and count in its fleet table, and invoke functions named like this stage's cell APIs, nothing else", () => {
    const granted = rights(router(['north']), 'RouterRole').filter((r) => !/^(logs|xray):/.test(r.actions[0]!));
    expect(granted).toEqual([
      { actions: ['dynamodb:GetItem', 'dynamodb:Query'], resource: expect.stringMatching(/RegistryTable.*"Arn"/) },
      { actions: ['dynamodb:PutItem', 'dynamodb:Query'], resource: expect.stringMatching(/FleetTable.*"Arn"/) },
      { actions: ['lambda:InvokeFunction'], resource: expect.stringMatching(/:function:shop-dev-\*-api:live"/) },
    ]);
  });

  it('refuses to ship a routing that leaves the environment no room', () => {
    const many = Array.from({ length: 200 }, (_, i) => `cell-${i}-of-many`);
    expect(() => shippedRouting(app, many)).toThrow(/over 3000: fewer cells or shorter cell ids/);
  });
});

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

describe('LiveUpdatesReference', () => {
  it('finds the API by its SSM parameters and grants a publisher exactly its rights', () => {
    const stack = bareStack();
    const live = LiveUpdatesReference.fromParameters(stack, app);
    const role = new Role(stack, 'Publisher', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const grant = live.grantPublish(role);
    expect(grant.success).toBe(true);

    const template = Template.fromStack(stack);
    const parameters = Object.values(template.toJSON().Parameters ?? {}).map((p: any) => p.Default);
    expect(parameters).toEqual(expect.arrayContaining([liveParameter(app, 'api-id'), liveParameter(app, 'connections-table')]));
    expect(rights(template, 'Publisher')).toEqual([
      { actions: ['dynamodb:Query'], resource: expect.stringMatching(/\/index\/ByTenant"/) },
      { actions: ['dynamodb:BatchWriteItem', 'dynamodb:Query'], resource: expect.stringMatching(/liveconnectionstable[^/]*\}\]\]\}$/) },
      { actions: ['execute-api:ManageConnections'], resource: expect.stringMatching(/\/live\/POST\/@connections\/\*"/) },
    ]);
    expect(live.callbackUrl).toContain('.execute-api.');
  });
});

describe('CanaryDeployment', () => {
  const withFunction = () => {
    const stack = new Stack(new App({ outdir: mkdtempSync(path.join(outdir, 'app-')) }), 'S');
    const fn = new LambdaFunction(stack, 'Fn', {
      runtime: Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: Code.fromInline('exports.handler = async () => 1;'),
    });
    const alarm = (id: string) => new Alarm(stack, id, { metric: fn.metricErrors(), threshold: 1, evaluationPeriods: 1 });
    return { stack, fn, alarm };
  };

  it('shifts its alias all at once, or by a canary of its own, predefined where CodeDeploy has one', () => {
    const cases: Array<[TrafficShift, unknown]> = [
      ['all-at-once', 'CodeDeployDefault.LambdaAllAtOnce'],
      [{ canaryPercent: 10, canaryMinutes: 15 }, 'CodeDeployDefault.LambdaCanary10Percent15Minutes'],
      [{ canaryPercent: 5, canaryMinutes: 2 }, { Ref: Match.stringLikeRegexp('TrafficShift') }],
    ];
    for (const [trafficShift, configName] of cases) {
      const { stack, fn, alarm } = withFunction();
      new CanaryDeployment(stack, 'Deploy', { fn, trafficShift }).rollBackOn(alarm('Health'));
      const template = Template.fromStack(stack);
      template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', { DeploymentConfigName: configName });
      template.hasResourceProperties('AWS::Lambda::Alias', { Name: 'live' });
    }
    const { stack, fn, alarm } = withFunction();
    new CanaryDeployment(stack, 'Deploy', { fn, trafficShift: { canaryPercent: 5, canaryMinutes: 2 } }).rollBackOn(alarm('Health'));
    Template.fromStack(stack).hasResourceProperties('AWS::CodeDeploy::DeploymentConfig', {
      TrafficRoutingConfig: { Type: 'TimeBasedCanary', TimeBasedCanary: { CanaryPercentage: 5, CanaryInterval: 2 } },
    });
  });

  it('refuses more than 10 alarms, and a deployment group with none fails synthesis', () => {
    const { stack, fn, alarm } = withFunction();
    const deployment = new CanaryDeployment(stack, 'Deploy', { fn });
    expect(() =>
      deployment.rollBackOn(
        alarm('Health'),
        Array.from({ length: 10 }, (_, i) => alarm(`A${i}`)),
      ),
    ).toThrow(/at most 10 alarms, and 11 were given/);
    const bare = withFunction();
    new CanaryDeployment(bare.stack, 'Deploy', { fn: bare.fn });
    expect(() => Template.fromStack(bare.stack)).toThrow(
      /'deploymentInAlarm' does not have any effect unless you associate at least one CloudWatch alarm/,
    );
  });
});
