import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it, vi } from 'vitest';
import { decodeBuckets } from '../../routing/bucket-codec.ts';
import { evenSplit } from '../../routing/routing.ts';
import { buildTestApp } from '../support/synth.ts';
import {
  type Resources,
  certificateArn,
  serviceFunction,
  serviceFunctionId,
  logicalIdOf,
  sdkCalls,
  policyStatements,
  watchedBy,
  synthesizedApp,
  UNBUNDLED,
} from '../support/templates.ts';

const app = synthesizedApp();

describe('control-plane stack', () => {
  it('has a VPC with public subnets only, in two zones, and no NAT gateway', () => {
    app.controlPlane.resourceCountIs('AWS::EC2::VPC', 1);
    app.controlPlane.resourceCountIs('AWS::EC2::NatGateway', 0);
    const subnets = Object.values(app.controlPlane.findResources('AWS::EC2::Subnet'));
    expect(subnets).toHaveLength(2);
    for (const subnet of subnets) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(true);
    app.controlPlane.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  it('has an internet-facing ALB with access logs and an HTTP listener forwarding to the router', () => {
    app.controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      Type: 'application',
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'access_logs.s3.enabled', Value: 'true' }]),
    });
    app.controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'routing.http.drop_invalid_header_fields.enabled', Value: 'true' }]),
    });
    app.controlPlane.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    app.controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [{ Type: 'forward', TargetGroupArn: Match.anyValue() }],
    });
  });

  it('targets the router with health checks on /health and single-value headers', () => {
    app.controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetType: 'lambda',
      HealthCheckEnabled: true,
      HealthCheckPath: '/health',
      // The router's serving alias, which CodeDeploy moves (see "canary deployments").
      Targets: [{ Id: { Ref: Match.stringLikeRegexp('^RouterDeploymentAlias') } }],
      TargetGroupAttributes: Match.arrayWith([{ Key: 'lambda.multi_value_headers.enabled', Value: 'false' }]),
    });
    app.controlPlane.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { Ref: Match.stringLikeRegexp('^RouterDeploymentAlias') },
      Principal: 'elasticloadbalancing.amazonaws.com',
    });
  });

  it('holds the registry and the map in one table, published under a well-known SSM name', () => {
    app.controlPlane.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
    });
    app.controlPlane.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/item-master/dev/control-plane/table-name',
      Value: { Ref: Match.stringLikeRegexp('^RegistryTable') },
    });
  });

  it('runs moves in its own workflow, published under a well-known SSM name for the cells CLI', () => {
    app.controlPlane.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/item-master/dev/control-plane/move-workflow-arn',
      Value: { Ref: Match.stringLikeRegexp('^MovesStateMachine') },
    });
    app.controlPlane.hasResourceProperties('AWS::Lambda::Function', {
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
    const [seed] = sdkCalls(app.controlPlane);
    expect(sdkCalls(app.controlPlane)).toHaveLength(1);
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
    app.controlPlane.hasResourceProperties('AWS::Cognito::UserPool', {
      UserPoolTier: 'ESSENTIALS',
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      MfaConfiguration: 'ON',
    });
    const pool = logicalIdOf(app.controlPlane, 'AWS::Cognito::UserPool');
    app.controlPlane.hasResourceProperties('AWS::Cognito::UserPoolResourceServer', {
      UserPoolId: { Ref: pool },
      Identifier: 'item-master',
      Scopes: [
        { ScopeName: 'items.read', ScopeDescription: Match.anyValue() },
        { ScopeName: 'items.write', ScopeDescription: Match.anyValue() },
        { ScopeName: 'orders.write', ScopeDescription: Match.anyValue() },
      ],
    });
    app.controlPlane.hasResourceProperties('AWS::Cognito::UserPoolDomain', {
      UserPoolId: { Ref: pool },
      Domain: { 'Fn::Join': ['-', ['item-master-dev', { Ref: 'AWS::AccountId' }]] },
    });
  });

  it('writes the tenant into access tokens with a V3_0 pre-token trigger that may read client bindings only', () => {
    const claims = serviceFunction(app.controlPlane, 'tenant-claims');
    const [claimsId] = Object.entries(app.controlPlane.findResources('AWS::Lambda::Function')).find(([, fn]) => fn === claims) ?? [];
    app.controlPlane.hasResourceProperties('AWS::Cognito::UserPool', {
      LambdaConfig: { PreTokenGenerationConfig: { LambdaArn: { 'Fn::GetAtt': [claimsId, 'Arn'] }, LambdaVersion: 'V3_0' } },
    });
    app.controlPlane.hasResourceProperties('AWS::Lambda::Permission', {
      FunctionName: { 'Fn::GetAtt': [claimsId, 'Arn'] },
      Principal: 'cognito-idp.amazonaws.com',
    });
    const roleId = claims.Properties.Role['Fn::GetAtt'][0];
    const statements = Object.values(app.controlPlane.findResources('AWS::IAM::Policy'))
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
    const env = serviceFunction(app.controlPlane, 'router').Properties.Environment.Variables;
    expect(env.USER_POOL_ID).toEqual({ Ref: logicalIdOf(app.controlPlane, 'AWS::Cognito::UserPool') });
    expect(env.AUTH_RESOURCE_SERVER).toBe('item-master');
    for (const name of ['user-pool-id', 'resource-server', 'token-url']) {
      app.controlPlane.hasResourceProperties('AWS::SSM::Parameter', { Name: `/item-master/dev/identity/${name}` });
    }
  });
});

describe('control-plane web ACL', () => {
  it('guards the ALB with a per-IP rate rule and AWS managed rule groups, item-sized bodies allowed', () => {
    const acl = logicalIdOf(app.controlPlane, 'AWS::WAFv2::WebACL');
    app.controlPlane.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
      ResourceArn: { Ref: logicalIdOf(app.controlPlane, 'AWS::ElasticLoadBalancingV2::LoadBalancer') },
      WebACLArn: { 'Fn::GetAtt': [acl, 'Arn'] },
    });
    const rules = app.controlPlane.toJSON().Resources[acl].Properties.Rules as any[];
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
    app.controlPlane.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    app.controlPlane.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
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

describe('live updates (control plane)', () => {
  const resources = () => app.controlPlane.toJSON().Resources as Resources;
  const ofType = (type: string) => Object.entries(resources()).filter(([, r]) => r.Type === type);

  it('is a WebSocket API routed by action, with one Lambda integration per route, all to the socket function', () => {
    const [[apiId, api]] = ofType('AWS::ApiGatewayV2::Api') as [[string, any]];
    expect(api.Properties).toMatchObject({ ProtocolType: 'WEBSOCKET', RouteSelectionExpression: '$request.body.action' });
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['$connect', '$default', '$disconnect', 'subscribe', 'unsubscribe']);
    const integrationIds = routes.map((r) => r.Target['Fn::Join'][1][1].Ref);
    expect(new Set(integrationIds).size).toBe(5);
    const socketId = serviceFunctionId(app.controlPlane, 'live-socket');
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
    expect(JSON.stringify(authorizer.AuthorizerUri)).toContain(`"${serviceFunctionId(app.controlPlane, 'live-authorizer')}"`);
    const verifier = serviceFunction(app.controlPlane, 'live-authorizer').Properties.Environment.Variables;
    const router = serviceFunction(app.controlPlane, 'router').Properties.Environment.Variables;
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
    const socket = policyStatements(app.controlPlane, /^LiveSocketRole/).filter((s) => JSON.stringify(s.Action).includes('dynamodb:'));
    expect(socket).toEqual([
      expect.objectContaining({
        Action: ['dynamodb:BatchWriteItem', 'dynamodb:PutItem', 'dynamodb:Query'],
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^LiveConnections/), 'Arn'] },
      }),
    ]);
    const authorizer = policyStatements(app.controlPlane, /^LiveAuthorizerRole/).flatMap((s) => [s.Action].flat());
    expect(authorizer.every((action: string) => /^(logs|xray):/.test(action))).toBe(true);
  });
});

describe("the front door's health", () => {
  it('alarms on the router, its routing reads, the ALB and the live-updates API, under one composite alarm the dashboard shows', () => {
    const alarms = app.controlPlane.findResources('AWS::CloudWatch::Alarm');
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
    const [composite, ...others] = Object.values(app.controlPlane.findResources('AWS::CloudWatch::CompositeAlarm'));
    expect(others).toEqual([]);
    expect(composite!.Properties.AlarmName).toBe('item-master-dev-control-plane-healthy');
    const rule = JSON.stringify(composite!.Properties.AlarmRule);
    for (const id of Object.keys(alarms)) expect([id, rule.includes(`"${id}"`)]).toEqual([id, true]);
    const body = JSON.stringify(Object.values(app.controlPlane.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties.DashboardBody);
    expect(body).toContain('front door healthy');
    // WAF's blocked requests are a metric on the dashboard, not an alarm.
    expect(body).toContain('BlockedRequests');
    expect(watched).not.toContain('BlockedRequests');
  });
});
