import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { fromRoot } from '../../lib/paths.ts';
import { buildTestApp } from '../support/synth.ts';
import {
  type Resources,
  serviceFunctions,
  serviceFunction,
  serviceFunctionId,
  logicalIdOf,
  policyStatements,
  dynamoActionsIn,
  grantedActions,
  synthesizedApp,
  UNBUNDLED,
} from '../support/templates.ts';

const app = synthesizedApp();

describe('the app', () => {
  it('has one control-plane stack and one stack per configured cell', () => {
    expect(app.built.stacks.controlPlane.stackName).toBe('item-master-dev-control-plane');
    expect(app.built.stacks.cells.map((stack) => stack.stackName)).toEqual([
      'item-master-dev-cell-1',
      'item-master-dev-cell-2',
      'item-master-dev-cell-3',
    ]);
  });

  it('gives every function the shared defaults from one construct', () => {
    const functions = [app.controlPlane, ...Object.values(app.cells)].flatMap(serviceFunctions);
    // One service per handler folder, the folder's name its name: every function is found, none is left out.
    const services = new Set(functions.map((fn) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME));
    expect(services).toEqual(new Set(readdirSync(fromRoot('functions'))));
    for (const template of Object.values(app.cells)) expect(serviceFunctions(template).length).toBeGreaterThan(0);
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: expect.anything() },
      });
      // The functions on every request's path bundle what they use of the shared code (one module to load at a cold start); every other function takes the layer.
      if (['router', 'cell-api'].includes(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME)) expect(fn.Properties.Layers).toBeUndefined();
      else expect(fn.Properties.Layers).toEqual([expect.objectContaining({ Ref: expect.stringMatching(/^SharedLayer/) })]);
      // Source maps ship but are not read at a cold start.
      expect(fn.Properties.Environment.Variables).not.toHaveProperty('NODE_OPTIONS');
      expect(fn.Properties.Environment.Variables).toMatchObject({
        POWERTOOLS_METRICS_NAMESPACE: 'ItemMaster',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      });
    }
  });

  it('takes every name from appName: a fork named catalog with two cells says item-master nowhere', () => {
    const fork = buildTestApp({ appName: 'catalog', cells: ['north', 'south'] }, UNBUNDLED);
    try {
      expect([fork.stacks.controlPlane, ...fork.stacks.cells].map((stack) => stack.stackName)).toEqual([
        'catalog-dev-control-plane',
        'catalog-dev-north',
        'catalog-dev-south',
      ]);
      fork.app.synth();
      const templates = readdirSync(fork.outdir).filter((file) => file.endsWith('.template.json'));
      expect(templates).toHaveLength(3);
      for (const file of templates) {
        const text = readFileSync(path.join(fork.outdir, file), 'utf8');
        expect(text.match(/item.?master/gi), file).toBeNull();
      }
      const functions = Template.fromStack(fork.stacks.cells[0]!).findResources('AWS::Lambda::Function');
      const namespaces = Object.values(functions).map((fn) => fn.Properties.Environment?.Variables?.POWERTOOLS_METRICS_NAMESPACE);
      expect(new Set(namespaces.filter((ns) => ns !== undefined))).toEqual(new Set(['Catalog']));
    } finally {
      fork.cleanup();
    }
  });

  it("keeps every log group of the app for logRetentionDays, the front door's flow logs included", () => {
    const built = buildTestApp({ cells: 'cell-1', logRetentionDays: 7 }, UNBUNDLED);
    try {
      for (const stack of [built.stacks.controlPlane, ...built.stacks.cells]) {
        const groups = Object.entries(Template.fromStack(stack).findResources('AWS::Logs::LogGroup'));
        expect(groups.length).toBeGreaterThan(0);
        for (const [id, group] of groups) expect([id, group.Properties.RetentionInDays]).toEqual([id, 7]);
      }
    } finally {
      built.cleanup();
    }
  });

  // The local runtime checks no IAM: a DynamoDB call the code makes and the role lacks would fail only on AWS.
  it.each([
    ['cell-api', 'cell', readdirSync(fromRoot('functions/cell-api')).map((file) => `functions/cell-api/${file}`)],
    ['router', 'control plane', [...readdirSync(fromRoot('functions/router')).map((file) => `functions/router/${file}`), 'routing/reader.ts']],
  ])('grants the %s every DynamoDB action its code sends', (service, where, files) => {
    const template = where === 'cell' ? app.cells['cell-1']! : app.controlPlane;
    const needed = dynamoActionsIn(files);
    expect(needed.length).toBeGreaterThan(1);
    const granted = grantedActions(template, serviceFunction(template, service));
    expect(needed.filter((action) => !granted.includes(action))).toEqual([]);
  });

  it('gives each function a log group with retention and a role writing only to it', () => {
    for (const template of [app.controlPlane, ...Object.values(app.cells)]) {
      const resources = template.toJSON().Resources as Resources;
      for (const fn of serviceFunctions(template)) {
        const logGroup = resources[fn.Properties.LoggingConfig.LogGroup.Ref]!;
        expect(logGroup.Properties.RetentionInDays).toBe(30);
        const roleId = fn.Properties.Role['Fn::GetAtt'][0];
        expect(resources[roleId]!.Properties.ManagedPolicyArns).toBeUndefined();
        const logStatements = policyStatements(template).filter(
          (s) => JSON.stringify(s.Action).includes('logs:') && JSON.stringify(s.Resource).includes(fn.Properties.LoggingConfig.LogGroup.Ref),
        );
        expect(logStatements).toHaveLength(1);
      }
    }
  });
});

describe("the app's dashboard", () => {
  /** The dashboard's body, with the tokens CloudFormation resolves shown by their logical ids. */
  const bodyOf = (template: Template): string => {
    const [dashboard, ...others] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(others).toEqual([]);
    const body = dashboard!.Properties.DashboardBody;
    return typeof body === 'string'
      ? body
      : body['Fn::Join'][1].map((part: unknown) => (typeof part === 'string' ? part : JSON.stringify(part))).join('');
  };

  it('has the front door and a row per cell, each with its health alarm, its router metrics and its cell API', () => {
    const body = bodyOf(app.controlPlane);
    expect(body).toContain('## Front door');
    for (const cellId of Object.keys(app.cells)) {
      expect(body).toContain(`## ${cellId}`);
      expect(body).toContain(`alarm:item-master-dev-${cellId}-healthy`);
      expect(body).toContain(`"cellId","${cellId}"`);
      expect(body).toContain(`"FunctionName","item-master-dev-${cellId}-api"`);
    }
    // What the functions emit under their cell: orders placed, and how late the live updates are.
    for (const metric of [
      '"OrdersPlaced","cellId","cell-1","service","cell-api"',
      '"StreamLag","cellId","cell-1","service","publisher"',
      '"RoutingVersion","service","router"',
    ]) {
      expect([metric, body.includes(metric)]).toEqual([metric, true]);
    }
  });

  it('adds a row for a 4th cell and changes nothing else', () => {
    const four = app.withFourCells();
    {
      const before = bodyOf(app.controlPlane);
      const after = bodyOf(Template.fromStack(four.stacks.controlPlane));
      expect(after).toContain('## cell-4');
      expect(after).toContain('alarm:item-master-dev-cell-4-healthy');
      // The rows before are as they were: the new row is appended.
      const rows = (body: string) => body.split('"markdown":"## ');
      expect(
        rows(after)
          .slice(0, 4)
          .map((row) => row.replace(/"y":\d+/g, '')),
      ).toEqual(
        rows(before)
          .slice(0, 4)
          .map((row) => row.replace(/"y":\d+/g, '')),
      );
      expect(rows(after)).toHaveLength(rows(before).length + 1);
    }
  });
});

describe('canary deployments', () => {
  /** The one resource of `type` whose logical id starts with `prefix`. */
  const only = (template: Template, type: string, prefix: string) => {
    const found = Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(prefix));
    expect(found.map(([id]) => id)).toHaveLength(1);
    return found[0]!;
  };
  const alarmNames = (group: { Properties?: any }) =>
    group.Properties.AlarmConfiguration.Alarms.map((alarm: { Name: { Ref: string } }) => alarm.Name.Ref).sort();

  it("serves each cell API through an alias CodeDeploy shifts 10% for 5 minutes, rolled back on the cell's composite alarm and its members", () => {
    for (const template of Object.values(app.cells)) {
      const apiId = serviceFunctionId(template, 'cell-api');
      const [aliasId, alias] = only(template, 'AWS::Lambda::Alias', 'ApiDeploymentAlias');
      expect(alias.Properties).toMatchObject({ Name: 'live', FunctionName: { Ref: apiId } });
      expect((alias as any).UpdatePolicy.CodeDeployLambdaAliasUpdate).toBeDefined();
      const [, group] = only(template, 'AWS::CodeDeploy::DeploymentGroup', 'ApiDeployment');
      expect(group.Properties).toMatchObject({
        DeploymentConfigName: 'CodeDeployDefault.LambdaCanary10Percent5Minutes',
        DeploymentStyle: { DeploymentType: 'BLUE_GREEN', DeploymentOption: 'WITH_TRAFFIC_CONTROL' },
        AutoRollbackConfiguration: { Enabled: true, Events: expect.arrayContaining(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']) },
        AlarmConfiguration: { Enabled: true },
      });
      const watched = alarmNames(group);
      const composite = logicalIdOf(template, 'AWS::CloudWatch::CompositeAlarm');
      expect(watched).toEqual([composite, ...Object.keys(template.findResources('AWS::CloudWatch::Alarm'))].sort());
      expect(watched.length).toBeLessThanOrEqual(10);
      expect((alias as any).UpdatePolicy.CodeDeployLambdaAliasUpdate.DeploymentGroupName.Ref).toMatch(/^ApiDeployment/);
      expect(aliasId).toBeDefined();
    }
  });

  it("serves the router through an alias the ALB targets, rolled back on the front door's composite alarm and its members", () => {
    const routerId = serviceFunctionId(app.controlPlane, 'router');
    const [aliasId, alias] = only(app.controlPlane, 'AWS::Lambda::Alias', 'RouterDeploymentAlias');
    expect(alias.Properties).toMatchObject({ Name: 'live', FunctionName: { Ref: routerId } });
    app.controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { Targets: [{ Id: { Ref: aliasId } }] });
    const [, group] = only(app.controlPlane, 'AWS::CodeDeploy::DeploymentGroup', 'RouterDeployment');
    expect(group.Properties.DeploymentConfigName).toBe('CodeDeployDefault.LambdaCanary10Percent5Minutes');
    const composite = logicalIdOf(app.controlPlane, 'AWS::CloudWatch::CompositeAlarm');
    expect(alarmNames(group)).toEqual([composite, ...Object.keys(app.controlPlane.findResources('AWS::CloudWatch::Alarm'))].sort());
  });

  it("has the router invoke each cell API's alias, and its IAM name the alias and nothing unqualified", () => {
    const shipped = JSON.parse(serviceFunction(app.controlPlane, 'router').Properties.Environment.Variables.SHIPPED_ROUTING);
    expect(Object.values(shipped.functions)).toEqual(['cell-1', 'cell-2', 'cell-3'].map((cell) => `item-master-dev-${cell}-api:live`));
    const invoke = policyStatements(app.controlPlane, /^RouterRole/).filter((statement) =>
      [statement.Action].flat().includes('lambda:InvokeFunction'),
    );
    expect(invoke).toHaveLength(1);
    expect(JSON.stringify(invoke[0].Resource)).toMatch(/:function:item-master-dev-\*-api:live"/);
  });

  it('takes the traffic shift from config', () => {
    const tuned = buildTestApp({ cells: ['cell-1'], lambdaTrafficShift: { canaryPercent: 25, canaryMinutes: 3 } }, UNBUNDLED);
    try {
      for (const stack of [tuned.stacks.controlPlane, tuned.stacks.cells[0]!]) {
        const template = Template.fromStack(stack);
        const [configId] = only(template, 'AWS::CodeDeploy::DeploymentConfig', '');
        template.hasResourceProperties('AWS::CodeDeploy::DeploymentConfig', {
          ComputePlatform: 'Lambda',
          TrafficRoutingConfig: { Type: 'TimeBasedCanary', TimeBasedCanary: { CanaryPercentage: 25, CanaryInterval: 3 } },
        });
        template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', { DeploymentConfigName: { Ref: configId } });
      }
    } finally {
      tuned.cleanup();
    }
  });
});

describe('alarm notifications', () => {
  it('with alarmEmail: one topic in the control plane, the address subscribed, and every composite alarm notifying it; without: none', () => {
    expect(app.controlPlane.findResources('AWS::SNS::Topic')).toEqual({});
    for (const template of Object.values(app.cells)) {
      for (const alarm of Object.values(template.findResources('AWS::CloudWatch::CompositeAlarm')))
        expect(alarm.Properties.AlarmActions).toBeUndefined();
    }
    const notified = buildTestApp({ alarmEmail: 'ops@example.com' }, UNBUNDLED);
    try {
      const control = Template.fromStack(notified.stacks.controlPlane);
      control.hasResourceProperties('AWS::SNS::Topic', { TopicName: 'item-master-dev-alarms' });
      control.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
      for (const stack of [notified.stacks.controlPlane, ...notified.stacks.cells]) {
        const [composite] = Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::CompositeAlarm'));
        const actions = JSON.stringify([composite!.Properties.AlarmActions, composite!.Properties.OKActions]);
        expect(actions.match(/:item-master-dev-alarms/g)).toHaveLength(2);
        // cdk-nag finds nothing to refuse.
        expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
      }
    } finally {
      notified.cleanup();
    }
  });
});
