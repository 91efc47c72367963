import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/synth.ts';

type Resources = Record<string, { Type: string; Properties?: any; DeletionPolicy?: string }>;

const certificateArn = 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666';

let built: ReturnType<typeof buildTestApp>;
let controlPlane: Template;
let cells: Record<string, Template>;

beforeAll(() => {
  built = buildTestApp();
  controlPlane = Template.fromStack(built.stacks.controlPlane);
  cells = Object.fromEntries(built.stacks.cells.map((stack) => [stack.cellId, Template.fromStack(stack)]));
});
afterAll(() => built?.cleanup());

/** Functions of the service (the construct's), not CDK's own custom-resource handlers. */
function serviceFunctions(template: Template) {
  return Object.values(template.findResources('AWS::Lambda::Function')).filter(
    (resource) => resource.Properties?.Environment?.Variables?.POWERTOOLS_SERVICE_NAME,
  );
}

function policyStatements(template: Template): any[] {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (policy) => policy.Properties.PolicyDocument.Statement,
  );
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
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: expect.anything() },
        Layers: [expect.objectContaining({ Ref: expect.stringMatching(/^SharedLayer/) })],
      });
      expect(fn.Properties.Environment.Variables).toMatchObject({
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_METRICS_NAMESPACE: 'ItemMaster',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      });
    }
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
      Targets: [{ Id: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Router'), 'Arn'] } }],
      TargetGroupAttributes: Match.arrayWith([{ Key: 'lambda.multi_value_headers.enabled', Value: 'false' }]),
    });
    controlPlane.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'elasticloadbalancing.amazonaws.com',
    });
  });

  it('tells the router every cell function by name, in configured order', () => {
    const router = serviceFunctions(controlPlane)[0]!;
    expect(JSON.parse(router.Properties.Environment.Variables.CELL_FUNCTIONS)).toEqual({
      'cell-1': 'item-master-dev-cell-1-api',
      'cell-2': 'item-master-dev-cell-2-api',
      'cell-3': 'item-master-dev-cell-3-api',
    });
    expect(router.Properties.Environment.Variables.CELL_ID).toBeUndefined();
  });

  it('lets the router invoke the cell API functions and nothing else', () => {
    const statements = policyStatements(controlPlane).filter((s) => JSON.stringify(s.Action).includes('lambda:'));
    expect(statements).toHaveLength(1);
    expect(statements[0].Action).toBe('lambda:InvokeFunction');
    const resources = statements[0].Resource.map((arn: unknown) => JSON.stringify(arn));
    expect(resources).toHaveLength(3);
    for (const cellId of ['cell-1', 'cell-2', 'cell-3']) {
      expect(resources.some((arn: string) => arn.includes(`:function:item-master-dev-${cellId}-api"`))).toBe(true);
    }
    const everyAction = policyStatements(controlPlane).flatMap((s) => [s.Action].flat());
    expect(everyAction.filter((action: string) => action.startsWith('lambda:'))).toEqual(['lambda:InvokeFunction']);
  });
});

describe('control-plane stack with a certificate', () => {
  it('serves HTTPS on 443 and redirects HTTP to it', () => {
    const withCert = buildTestApp({ certificateArn });
    try {
      const template = Template.fromStack(withCert.stacks.controlPlane);
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

  it('each have an API function named for the cell, reading its own table', () => {
    for (const [cellId, template] of Object.entries(cells)) {
      const api = serviceFunctions(template)[0]!;
      expect(api.Properties.FunctionName).toBe(`item-master-dev-${cellId}-api`);
      expect(api.Properties.Environment.Variables).toMatchObject({
        CELL_ID: cellId,
        POWERTOOLS_SERVICE_NAME: 'cell-api',
        TABLE_NAME: { Ref: expect.stringMatching(/^DataTable/) },
      });
    }
  });

  it('grant the API function only the item operations on its own table', () => {
    for (const template of Object.values(cells)) {
      const dynamo = policyStatements(template).filter((s) => JSON.stringify(s.Action).includes('dynamodb:'));
      expect(dynamo).toHaveLength(1);
      expect(dynamo[0].Action).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
      expect(dynamo[0].Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^DataTable/), 'Arn'] });
    }
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
            expect(statement.Action).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
            continue;
          }
          const logicalId = resource['Fn::GetAtt']?.[0] ?? resource.Ref;
          expect(resources[logicalId], JSON.stringify(resource)).toBeDefined();
        }
      }
    }
  });

  it('adding a cell adds a stack and changes no other stack of a cell', () => {
    const four = buildTestApp({ cells: ['cell-1', 'cell-2', 'cell-3', 'cell-4'] });
    try {
      expect(four.stacks.cells).toHaveLength(4);
      for (const stack of four.stacks.cells.slice(0, 3)) {
        expect(Template.fromStack(stack).toJSON()).toEqual(cells[stack.cellId]!.toJSON());
      }
    } finally {
      four.cleanup();
    }
  });

  it('keep data in prod: deletion protection and RETAIN on the table', () => {
    const prod = buildTestApp({ stage: 'prod', cells: ['cell-1'] });
    try {
      const template = Template.fromStack(prod.stacks.cells[0]!);
      template.hasResource('AWS::DynamoDB::GlobalTable', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({ Replicas: [Match.objectLike({ DeletionProtectionEnabled: true })] }),
      });
      expect(prod.stacks.cells[0]!.stackName).toBe('item-master-prod-cell-1');
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
