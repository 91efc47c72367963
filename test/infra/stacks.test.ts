import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeBuckets } from '../../routing/bucket-codec.ts';
import { evenSplit } from '../../routing/routing.ts';
import { fromRoot } from '../../lib/paths.ts';
import { buildTestApp } from '../support/synth.ts';

type Resources = Record<string, { Type: string; Properties?: any; DeletionPolicy?: string }>;

const certificateArn = 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666';

/** Nothing here reads a bundle: the templates are synthesized without bundling the functions. */
const UNBUNDLED = { bundle: false } as const;

let built: ReturnType<typeof buildTestApp>;
let controlPlane: Template;
let cells: Record<string, Template>;

beforeAll(() => {
  built = buildTestApp({}, UNBUNDLED);
  controlPlane = Template.fromStack(built.stacks.controlPlane);
  cells = Object.fromEntries(built.stacks.cells.map((stack) => [stack.cellId, Template.fromStack(stack)]));
});
let fourCells: ReturnType<typeof buildTestApp> | undefined;
/** The app with a 4th cell, built once for the tests that compare it with three. */
const withFourCells = () => (fourCells ??= buildTestApp({ cells: ['cell-1', 'cell-2', 'cell-3', 'cell-4'] }, UNBUNDLED));
afterAll(() => {
  built?.cleanup();
  fourCells?.cleanup();
});

/** Functions of the service (the construct's), not CDK's own custom-resource handlers. */
function serviceFunctions(template: Template) {
  return Object.values(template.findResources('AWS::Lambda::Function')).filter(
    (resource) => resource.Properties?.Environment?.Variables?.POWERTOOLS_SERVICE_NAME,
  );
}

function serviceFunction(template: Template, serviceName: string) {
  const [fn] = serviceFunctions(template).filter((resource) => resource.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === serviceName);
  if (!fn) throw new Error(`no ${serviceName} function`);
  return fn;
}

function serviceFunctionId(template: Template, serviceName: string): string {
  const fn = serviceFunction(template, serviceName);
  return Object.entries(template.findResources('AWS::Lambda::Function')).find(([, resource]) => resource === fn)![0];
}

function logicalIdOf(template: Template, type: string): string {
  const ids = Object.keys(template.findResources(type));
  if (ids.length !== 1) throw new Error(`expected one ${type}, found ${ids.length}`);
  return ids[0]!;
}

/**
 * The deploy-time SDK calls (AwsCustomResource) of a template, with tokens
 * shown as `<LogicalId>` or `<LogicalId.Attribute>`, and the IAM actions its
 * own policy grants.
 */
function sdkCalls(template: Template) {
  const render = (value: any): string => {
    if (typeof value === 'string') return value;
    if (value['Fn::Join']) return value['Fn::Join'][1].map(render).join(value['Fn::Join'][0]);
    if (value.Ref) return `<${value.Ref}>`;
    if (value['Fn::GetAtt']) return `<${value['Fn::GetAtt'].join('.')}>`;
    throw new Error(`unexpected token ${JSON.stringify(value)}`);
  };
  const policies = Object.values(template.findResources('AWS::IAM::Policy'));
  return Object.entries(template.findResources('Custom::AWS')).map(([logicalId, resource]) => {
    // Its statements, or the grants to its role (the role's first statement is its own log group's).
    const prefix = logicalId.replace(/[A-F0-9]{8}$/, '');
    const policy = policies.find((p) =>
      [`${prefix}CustomResourcePolicy`, `${prefix}RoleDefaultPolicy`].some((name) => p.Properties.PolicyName.startsWith(name)),
    );
    return {
      create: JSON.parse(render(resource.Properties.Create)),
      update: JSON.parse(render(resource.Properties.Update)),
      delete: resource.Properties.Delete ? JSON.parse(render(resource.Properties.Delete)) : undefined,
      actions: policy?.Properties.PolicyDocument.Statement.flatMap((s: { Action: string | string[] }) => [s.Action].flat())
        .filter((action: string) => !action.startsWith('logs:'))
        .sort(),
    };
  });
}

/** The logical ids a template value refers to (Ref or GetAtt, at any depth), pseudo parameters left out. */
function referencedIds(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(referencedIds);
  if (typeof value !== 'object' || value === null) return [];
  const token = value as Record<string, unknown>;
  if (typeof token.Ref === 'string') return token.Ref.startsWith('AWS::') ? [] : [token.Ref];
  if (Array.isArray(token['Fn::GetAtt'])) return [String(token['Fn::GetAtt'][0])];
  return Object.values(token).flatMap(referencedIds);
}

/** Every IAM statement of the template, or of the policies whose name matches. */
function policyStatements(template: Template, name?: RegExp): any[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => !name || name.test(policy.Properties.PolicyName))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

/** The IAM action of each DynamoDB command or paginator the code sends. */
const DYNAMO_ACTIONS: Record<string, string> = {
  GetCommand: 'GetItem',
  GetItemCommand: 'GetItem',
  BatchGetCommand: 'BatchGetItem',
  PutCommand: 'PutItem',
  PutItemCommand: 'PutItem',
  UpdateCommand: 'UpdateItem',
  UpdateItemCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  DeleteItemCommand: 'DeleteItem',
  QueryCommand: 'Query',
  paginateQuery: 'Query',
  ScanCommand: 'Scan',
  BatchWriteCommand: 'BatchWriteItem',
  TransactWriteCommand: 'TransactWriteItems',
};

/** Every DynamoDB action the given source files send. */
function dynamoActionsIn(files: string[]): string[] {
  const actions = new Set<string>();
  for (const file of files) {
    const source = readFileSync(fromRoot(file), 'utf8');
    for (const [name, action] of Object.entries(DYNAMO_ACTIONS))
      if (new RegExp(`\\b(new ${name}\\(|${name}\\()`).test(source)) actions.add(`dynamodb:${action}`);
  }
  return [...actions].sort();
}

/** The actions the role of a function is granted, from every policy attached to it. */
function grantedActions(template: Template, fn: Record<string, any>): string[] {
  const roleId = fn.Properties.Role['Fn::GetAtt'][0];
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: { Ref?: string }) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
    .flatMap((statement) => [statement.Action].flat());
}

describe('the app', () => {
  it('has one control-plane stack and one stack per configured cell', () => {
    expect(built.stacks.controlPlane.stackName).toBe('item-master-dev-control-plane');
    expect(built.stacks.cells.map((stack) => stack.stackName)).toEqual([
      'item-master-dev-cell-1',
      'item-master-dev-cell-2',
      'item-master-dev-cell-3',
    ]);
  });

  it('gives every function the shared defaults from one construct', () => {
    const functions = [controlPlane, ...Object.values(cells)].flatMap(serviceFunctions);
    // One service per handler folder, the folder's name its name: every function is found, none is left out.
    const services = new Set(functions.map((fn) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME));
    expect(services).toEqual(new Set(readdirSync(fromRoot('functions'))));
    for (const template of Object.values(cells)) expect(serviceFunctions(template).length).toBeGreaterThan(0);
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
    const template = where === 'cell' ? cells['cell-1']! : controlPlane;
    const needed = dynamoActionsIn(files);
    expect(needed.length).toBeGreaterThan(1);
    const granted = grantedActions(template, serviceFunction(template, service));
    expect(needed.filter((action) => !granted.includes(action))).toEqual([]);
  });

  it('gives each function a log group with retention and a role writing only to it', () => {
    for (const template of [controlPlane, ...Object.values(cells)]) {
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

describe('control-plane stack', () => {
  it('has a VPC with public subnets only, in two zones, and no NAT gateway', () => {
    controlPlane.resourceCountIs('AWS::EC2::VPC', 1);
    controlPlane.resourceCountIs('AWS::EC2::NatGateway', 0);
    const subnets = Object.values(controlPlane.findResources('AWS::EC2::Subnet'));
    expect(subnets).toHaveLength(2);
    for (const subnet of subnets) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(true);
    controlPlane.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  it('has an internet-facing ALB with access logs and an HTTP listener forwarding to the router', () => {
    controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      Type: 'application',
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'access_logs.s3.enabled', Value: 'true' }]),
    });
    controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'routing.http.drop_invalid_header_fields.enabled', Value: 'true' }]),
    });
    controlPlane.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [{ Type: 'forward', TargetGroupArn: Match.anyValue() }],
    });
  });

  it('targets the router with health checks on /health and single-value headers', () => {
    controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetType: 'lambda',
      HealthCheckEnabled: true,
      HealthCheckPath: '/health',
      // The router's serving alias, which CodeDeploy moves (see "canary deployments").
      Targets: [{ Id: { Ref: Match.stringLikeRegexp('^RouterDeploymentAlias') } }],
      TargetGroupAttributes: Match.arrayWith([{ Key: 'lambda.multi_value_headers.enabled', Value: 'false' }]),
    });
    controlPlane.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { Ref: Match.stringLikeRegexp('^RouterDeploymentAlias') },
      Principal: 'elasticloadbalancing.amazonaws.com',
    });
  });

  it('holds the registry and the map in one table, published under a well-known SSM name', () => {
    controlPlane.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
    });
    controlPlane.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/item-master/dev/control-plane/table-name',
      Value: { Ref: Match.stringLikeRegexp('^RegistryTable') },
    });
  });

  it('runs moves in its own workflow, published under a well-known SSM name for the cells CLI', () => {
    controlPlane.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/item-master/dev/control-plane/move-workflow-arn',
      Value: { Ref: Match.stringLikeRegexp('^MovesStateMachine') },
    });
    controlPlane.hasResourceProperties('AWS::Lambda::Function', {
      // The copy's ranges at once: config's moveCopySegments, 4 by default.
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'mover',
          CONTROL_PLANE_TABLE: { Ref: Match.stringLikeRegexp('^RegistryTable') },
          MOVE_COPY_SEGMENTS: '4',
        }),
      },
      Timeout: 180,
    });
  });

  it('seeds map version 1 on deploy, only if no version 1 exists', () => {
    const [seed] = sdkCalls(controlPlane);
    expect(sdkCalls(controlPlane)).toHaveLength(1);
    expect(seed!.create).toEqual(seed!.update);
    expect(seed!.create).toMatchObject({
      service: 'DynamoDB',
      action: 'putItem',
      ignoreErrorCodesMatching: 'ConditionalCheckFailedException',
      parameters: {
        TableName: expect.stringMatching(/^<RegistryTable/),
        ConditionExpression: 'attribute_not_exists(pk)',
        Item: { pk: { S: 'MAP' }, sk: { S: 'VERSION#0000000001' }, version: { N: '1' } },
      },
    });
    const item = seed!.create.parameters.Item;
    const map = decodeBuckets({ cells: item.cells.L.map((c: { S: string }) => c.S), buckets: item.buckets.S });
    expect(map).toEqual(evenSplit(['cell-1', 'cell-2', 'cell-3']));
    expect(seed!.actions).toEqual(['dynamodb:PutItem']);
  });
});

describe('control-plane identity', () => {
  it('is a Cognito user pool for machine clients: Essentials plan, no self sign-up, scopes on a resource server', () => {
    controlPlane.hasResourceProperties('AWS::Cognito::UserPool', {
      UserPoolTier: 'ESSENTIALS',
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      MfaConfiguration: 'ON',
    });
    const pool = logicalIdOf(controlPlane, 'AWS::Cognito::UserPool');
    controlPlane.hasResourceProperties('AWS::Cognito::UserPoolResourceServer', {
      UserPoolId: { Ref: pool },
      Identifier: 'item-master',
      Scopes: [
        { ScopeName: 'items.read', ScopeDescription: Match.anyValue() },
        { ScopeName: 'items.write', ScopeDescription: Match.anyValue() },
        { ScopeName: 'orders.write', ScopeDescription: Match.anyValue() },
      ],
    });
    controlPlane.hasResourceProperties('AWS::Cognito::UserPoolDomain', {
      UserPoolId: { Ref: pool },
      Domain: { 'Fn::Join': ['-', ['item-master-dev', { Ref: 'AWS::AccountId' }]] },
    });
  });

  it('writes the tenant into access tokens with a V3_0 pre-token trigger that may read client bindings only', () => {
    const claims = serviceFunction(controlPlane, 'tenant-claims');
    const [claimsId] = Object.entries(controlPlane.findResources('AWS::Lambda::Function')).find(([, fn]) => fn === claims) ?? [];
    controlPlane.hasResourceProperties('AWS::Cognito::UserPool', {
      LambdaConfig: { PreTokenGenerationConfig: { LambdaArn: { 'Fn::GetAtt': [claimsId, 'Arn'] }, LambdaVersion: 'V3_0' } },
    });
    controlPlane.hasResourceProperties('AWS::Lambda::Permission', {
      FunctionName: { 'Fn::GetAtt': [claimsId, 'Arn'] },
      Principal: 'cognito-idp.amazonaws.com',
    });
    const roleId = claims.Properties.Role['Fn::GetAtt'][0];
    const statements = Object.values(controlPlane.findResources('AWS::IAM::Policy'))
      .filter((policy) => policy.Properties.Roles.some((role: { Ref: string }) => role.Ref === roleId))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
      .filter((s) => JSON.stringify(s.Action).includes('dynamodb:'));
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: 'dynamodb:GetItem',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^RegistryTable/), 'Arn'] },
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['CLIENT'] } },
      },
    ]);
  });

  it('tells the router the pool and the resource server, and publishes them and the token endpoint for the CLI', () => {
    const env = serviceFunction(controlPlane, 'router').Properties.Environment.Variables;
    expect(env.USER_POOL_ID).toEqual({ Ref: logicalIdOf(controlPlane, 'AWS::Cognito::UserPool') });
    expect(env.AUTH_RESOURCE_SERVER).toBe('item-master');
    for (const name of ['user-pool-id', 'resource-server', 'token-url']) {
      controlPlane.hasResourceProperties('AWS::SSM::Parameter', { Name: `/item-master/dev/identity/${name}` });
    }
  });
});

describe('control-plane web ACL', () => {
  it('guards the ALB with a per-IP rate rule and AWS managed rule groups, item-sized bodies allowed', () => {
    const acl = logicalIdOf(controlPlane, 'AWS::WAFv2::WebACL');
    controlPlane.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
      ResourceArn: { Ref: logicalIdOf(controlPlane, 'AWS::ElasticLoadBalancingV2::LoadBalancer') },
      WebACLArn: { 'Fn::GetAtt': [acl, 'Arn'] },
    });
    const rules = controlPlane.toJSON().Resources[acl].Properties.Rules as any[];
    expect(rules[0]).toMatchObject({
      Name: 'RatePerClientIp',
      Action: { Block: {} },
      Statement: { RateBasedStatement: { AggregateKeyType: 'IP', Limit: 2000 } },
    });
    expect(rules.slice(1).map((rule) => rule.Statement.ManagedRuleGroupStatement.Name)).toEqual([
      'AWSManagedRulesAmazonIpReputationList',
      'AWSManagedRulesCommonRuleSet',
      'AWSManagedRulesKnownBadInputsRuleSet',
    ]);
    const common = rules.find((rule) => rule.Name === 'AWSManagedRulesCommonRuleSet');
    expect(common.Statement.ManagedRuleGroupStatement.RuleActionOverrides).toEqual([{ Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } }]);
  });

  it('is switched off and its rate set in context', () => {
    const off = buildTestApp({ waf: 'false' }, UNBUNDLED);
    const strict = buildTestApp({ wafRateLimit: 300 }, UNBUNDLED);
    try {
      Template.fromStack(off.stacks.controlPlane).resourceCountIs('AWS::WAFv2::WebACL', 0);
      Template.fromStack(off.stacks.controlPlane).resourceCountIs('AWS::WAFv2::WebACLAssociation', 0);
      Template.fromStack(strict.stacks.controlPlane).hasResourceProperties('AWS::WAFv2::WebACL', {
        Rules: Match.arrayWith([Match.objectLike({ Statement: { RateBasedStatement: Match.objectLike({ Limit: 300 }) } })]),
      });
    } finally {
      off.cleanup();
      strict.cleanup();
    }
  });
});

describe('control-plane stack with a certificate', () => {
  it('without one serves HTTP only and warns at synthesis', () => {
    controlPlane.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
    // As `cdk synth` and `cdk deploy` show it (the tests and the local runtime acknowledge it).
    const asDeployed = buildTestApp({ cells: 'cell-1' }, { ...UNBUNDLED, warnAsOnDeploy: true });
    try {
      // The validation report it prints at synthesis is the warning's point on a deploy, not here.
      vi.spyOn(console, 'error').mockImplementation(() => undefined);
      const warnings = Annotations.fromStack(asDeployed.stacks.controlPlane).findWarning('*', Match.stringLikeRegexp('plain HTTP only'));
      expect(warnings).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
      asDeployed.cleanup();
    }
  });

  it('serves HTTPS on 443 and redirects HTTP to it', () => {
    const withCert = buildTestApp({ certificateArn }, UNBUNDLED);
    try {
      const template = Template.fromStack(withCert.stacks.controlPlane);
      expect(Annotations.fromStack(withCert.stacks.controlPlane).findWarning('*', Match.stringLikeRegexp('plain HTTP only'))).toHaveLength(0);
      template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 2);
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
        Port: 443,
        Protocol: 'HTTPS',
        Certificates: [{ CertificateArn: certificateArn }],
        DefaultActions: [{ Type: 'forward', TargetGroupArn: Match.anyValue() }],
      });
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
        Port: 80,
        DefaultActions: [{ Type: 'redirect', RedirectConfig: Match.objectLike({ Protocol: 'HTTPS', Port: '443' }) }],
      });
    } finally {
      withCert.cleanup();
    }
  });
});

describe('cell stacks', () => {
  it('each have a table with pk/sk keys, on-demand, PITR and a new-and-old-images stream', () => {
    for (const template of Object.values(cells)) {
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
    for (const [cellId, template] of Object.entries(cells)) {
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
    for (const stack of built.stacks.cells) expect(stack.dependencies).toEqual([built.stacks.controlPlane]);
  });

  it('are isolated: no cell template names another cell, imports a value, or grants beyond its own resources', () => {
    for (const [cellId, template] of Object.entries(cells)) {
      const json = JSON.stringify(template.toJSON());
      for (const other of Object.keys(cells).filter((id) => id !== cellId)) expect(json).not.toContain(other);
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
    const template = cells['cell-1']!;
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
    const template = cells['cell-2']!;
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
    const router = serviceFunction(controlPlane, 'router').Properties.ReservedConcurrentExecutions as number;
    const cellApis = Object.values(cells).map((template) => serviceFunction(template, 'cell-api').Properties.ReservedConcurrentExecutions as number);
    expect([router, cellApis]).toEqual([450, [150, 150, 150]]);
    expect(router + cellApis.reduce((a, b) => a + b)).toBeLessThanOrEqual(1000 - 100);
  });

  it("adding a cell adds a stack and changes no other cell's stack but its share of reserved concurrency (none, with cellConcurrency set)", () => {
    const four = withFourCells();
    expect(four.stacks.cells).toHaveLength(4);
    const reservation = (template: Template) => serviceFunction(template, 'cell-api').Properties.ReservedConcurrentExecutions as number;
    const withoutReservation = (template: Template) => JSON.stringify(template.toJSON()).replace(/"ReservedConcurrentExecutions":\d+/, '');
    for (const stack of four.stacks.cells.slice(0, 3)) {
      const after = Template.fromStack(stack);
      expect(withoutReservation(after)).toEqual(withoutReservation(cells[stack.cellId]!));
      // The default splits half the reservable concurrency over the cells: 450 ÷ 3, then ÷ 4.
      expect([reservation(cells[stack.cellId]!), reservation(after)]).toEqual([150, 112]);
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
    for (const template of Object.values(cells)) {
      template.hasResource('AWS::DynamoDB::GlobalTable', {
        DeletionPolicy: 'Delete',
        Properties: Match.objectLike({ Replicas: [Match.objectLike({ DeletionProtectionEnabled: false })] }),
      });
    }
  });
});

describe('live updates (control plane)', () => {
  const resources = () => controlPlane.toJSON().Resources as Resources;
  const ofType = (type: string) => Object.entries(resources()).filter(([, r]) => r.Type === type);

  it('is a WebSocket API routed by action, with one Lambda integration per route, all to the socket function', () => {
    const [[apiId, api]] = ofType('AWS::ApiGatewayV2::Api') as [[string, any]];
    expect(api.Properties).toMatchObject({ ProtocolType: 'WEBSOCKET', RouteSelectionExpression: '$request.body.action' });
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['$connect', '$default', '$disconnect', 'subscribe', 'unsubscribe']);
    const integrationIds = routes.map((r) => r.Target['Fn::Join'][1][1].Ref);
    expect(new Set(integrationIds).size).toBe(5);
    const socketId = serviceFunctionId(controlPlane, 'live-socket');
    for (const id of integrationIds) {
      const integration = resources()[id]!.Properties;
      expect(integration.ApiId).toEqual({ Ref: apiId });
      expect(integration.IntegrationType).toBe('AWS_PROXY');
      expect(JSON.stringify(integration.IntegrationUri)).toContain(`"${socketId}"`);
    }
  });

  it("authorizes $connect only, with a REQUEST authorizer reading ?token= and verifying the router's tokens", () => {
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([id, r]) => ({ id, ...r.Properties }));
    const connect = routes.find((r) => r.RouteKey === '$connect');
    expect(connect.AuthorizationType).toBe('CUSTOM');
    for (const route of routes.filter((r) => r.RouteKey !== '$connect')) expect(route.AuthorizationType).toBe('NONE');
    const authorizer = resources()[connect.AuthorizerId.Ref]!.Properties;
    expect(authorizer).toMatchObject({ AuthorizerType: 'REQUEST', IdentitySource: ['route.request.querystring.token'] });
    expect(JSON.stringify(authorizer.AuthorizerUri)).toContain(`"${serviceFunctionId(controlPlane, 'live-authorizer')}"`);
    const verifier = serviceFunction(controlPlane, 'live-authorizer').Properties.Environment.Variables;
    const router = serviceFunction(controlPlane, 'router').Properties.Environment.Variables;
    expect(verifier.USER_POOL_ID).toEqual(router.USER_POOL_ID);
    expect(verifier.AUTH_RESOURCE_SERVER).toEqual(router.AUTH_RESOURCE_SERVER);
    // Frames are answered on the connection: a route response on every frame route.
    const answered = ofType('AWS::ApiGatewayV2::RouteResponse').map(([, r]) => r.Properties.RouteId.Ref);
    expect(
      routes
        .filter((r) => answered.includes(r.id))
        .map((r) => r.RouteKey)
        .sort(),
    ).toEqual(['$default', 'subscribe', 'unsubscribe']);
  });

  it('serves one throttled, auto-deployed stage named live', () => {
    const stages = ofType('AWS::ApiGatewayV2::Stage').map(([, r]) => r.Properties);
    expect(stages).toEqual([
      expect.objectContaining({
        StageName: 'live',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingBurstLimit: 1000, ThrottlingRateLimit: 500 },
      }),
    ]);
  });

  it('keeps connections in a table with TTL and a ByTenant index of the subscriptions, published with the API id for the cells', () => {
    const [[tableId, table]] = Object.entries(resources()).filter(
      ([id, r]) => r.Type === 'AWS::DynamoDB::GlobalTable' && id.startsWith('LiveConnections'),
    ) as [[string, any]];
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(table.Properties.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: 'ByTenant',
        KeySchema: [
          { AttributeName: 'tenantId', KeyType: 'HASH' },
          { AttributeName: 'topic', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['connectionId'] },
      },
    ]);
    const parameters = ofType('AWS::SSM::Parameter').map(([, r]) => r.Properties);
    expect(parameters).toContainEqual(expect.objectContaining({ Name: '/item-master/dev/live/connections-table', Value: { Ref: tableId } }));
    expect(parameters).toContainEqual(
      expect.objectContaining({ Name: '/item-master/dev/live/api-id', Value: { Ref: ofType('AWS::ApiGatewayV2::Api')[0]![0] } }),
    );
  });

  it('lets the socket write connections (not the index) and the authorizer touch no AWS data', () => {
    const socket = policyStatements(controlPlane, /^LiveSocketRole/).filter((s) => JSON.stringify(s.Action).includes('dynamodb:'));
    expect(socket).toEqual([
      expect.objectContaining({
        Action: ['dynamodb:BatchWriteItem', 'dynamodb:PutItem', 'dynamodb:Query'],
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^LiveConnections/), 'Arn'] },
      }),
    ]);
    const authorizer = policyStatements(controlPlane, /^LiveAuthorizerRole/).flatMap((s) => [s.Action].flat());
    expect(authorizer.every((action: string) => /^(logs|xray):/.test(action))).toBe(true);
  });
});

/** What each alarm watches: its metric's name, or the expression of its metric math. */
const watchedBy = (alarms: Record<string, { Properties?: any }>) =>
  Object.values(alarms).map((alarm) => alarm.Properties.MetricName ?? alarm.Properties.Metrics?.find((m: any) => m.Expression)?.Expression);

describe("a cell's health", () => {
  const alarmsOf = (template: Template) => template.findResources('AWS::CloudWatch::Alarm');

  it('has an alarm per sign of sickness, and one composite alarm over all of them, named for the deploy to watch', () => {
    for (const [cellId, template] of Object.entries(cells)) {
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
    for (const [cellId, template] of Object.entries(cells)) {
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
    const body = bodyOf(controlPlane);
    expect(body).toContain('## Front door');
    for (const cellId of Object.keys(cells)) {
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
    const four = withFourCells();
    {
      const before = bodyOf(controlPlane);
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

describe("the front door's health", () => {
  it('alarms on the router, its routing reads, the ALB and the live-updates API, under one composite alarm the dashboard shows', () => {
    const alarms = controlPlane.findResources('AWS::CloudWatch::Alarm');
    const watched = watchedBy(alarms);
    expect(watched).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/100 \* errors \/ invocations/),
        'Duration',
        'RoutingRefreshFailures',
        'HTTPCode_ELB_5XX_Count',
        'TargetResponseTime',
        'integration + execution',
      ]),
    );
    const [composite, ...others] = Object.values(controlPlane.findResources('AWS::CloudWatch::CompositeAlarm'));
    expect(others).toEqual([]);
    expect(composite!.Properties.AlarmName).toBe('item-master-dev-control-plane-healthy');
    const rule = JSON.stringify(composite!.Properties.AlarmRule);
    for (const id of Object.keys(alarms)) expect([id, rule.includes(`"${id}"`)]).toEqual([id, true]);
    const body = JSON.stringify(Object.values(controlPlane.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties.DashboardBody);
    expect(body).toContain('front door healthy');
    // WAF's blocked requests are a metric on the dashboard, not an alarm.
    expect(body).toContain('BlockedRequests');
    expect(watched).not.toContain('BlockedRequests');
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
    for (const template of Object.values(cells)) {
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
    const routerId = serviceFunctionId(controlPlane, 'router');
    const [aliasId, alias] = only(controlPlane, 'AWS::Lambda::Alias', 'RouterDeploymentAlias');
    expect(alias.Properties).toMatchObject({ Name: 'live', FunctionName: { Ref: routerId } });
    controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { Targets: [{ Id: { Ref: aliasId } }] });
    const [, group] = only(controlPlane, 'AWS::CodeDeploy::DeploymentGroup', 'RouterDeployment');
    expect(group.Properties.DeploymentConfigName).toBe('CodeDeployDefault.LambdaCanary10Percent5Minutes');
    const composite = logicalIdOf(controlPlane, 'AWS::CloudWatch::CompositeAlarm');
    expect(alarmNames(group)).toEqual([composite, ...Object.keys(controlPlane.findResources('AWS::CloudWatch::Alarm'))].sort());
  });

  it("has the router invoke each cell API's alias, and its IAM name the alias and nothing unqualified", () => {
    const shipped = JSON.parse(serviceFunction(controlPlane, 'router').Properties.Environment.Variables.SHIPPED_ROUTING);
    expect(Object.values(shipped.functions)).toEqual(['cell-1', 'cell-2', 'cell-3'].map((cell) => `item-master-dev-${cell}-api:live`));
    const invoke = policyStatements(controlPlane, /^RouterRole/).filter((statement) => [statement.Action].flat().includes('lambda:InvokeFunction'));
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
    expect(controlPlane.findResources('AWS::SNS::Topic')).toEqual({});
    for (const template of Object.values(cells)) {
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
