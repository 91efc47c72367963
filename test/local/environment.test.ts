import { describe, expect, it } from 'vitest';
import type { LocalAssembly, LocalFunction } from '../../local/assembly.ts';
import { functionEnvironment } from '../../local/environment.ts';

const fn: LocalFunction = {
  stackName: 'cell',
  logicalId: 'Api',
  functionName: 'item-master-dev-cell-1-api',
  codeDir: '/x',
  layerDirs: [],
  handler: 'index.handler',
  timeoutSeconds: 10,
  memoryMb: 512,
  environment: { TABLE_NAME: { Ref: 'DataTable' }, CELL_ID: 'cell-1', REGION: { Ref: 'AWS::Region' } },
};
const assembly: LocalAssembly = {
  outdir: '/x',
  region: 'eu-west-1',
  tables: [{ stackName: 'cell', logicalId: 'DataTable', tableName: 'cell-DataTable', properties: {} }],
  functions: [fn],
  aliases: [],
  frontDoor: { functionName: 'router', multiValueHeaders: false },
  ssmParameters: [],
  ssmParameterRefs: [],
  sdkCalls: [],
  userPools: [{ stackName: 'cp', logicalId: 'Pool', userPoolId: 'eu-west-1_localabc12345', resourceServers: ['item-master'] }],
  userPoolDomains: [{ stackName: 'cp', logicalId: 'Domain', domain: { 'Fn::Join': ['-', ['app', { Ref: 'AWS::AccountId' }]] } }],
  stateMachines: [{ stackName: 'cell', logicalId: 'Orders', name: 'cell-Orders', definition: '{}' }],
  queues: [{ stackName: 'cell', logicalId: 'Events', queueName: 'cell-Events' }],
  webSocketApis: [],
  streamMappings: [],
};
const endpoints = { dynamodb: 'http://127.0.0.1:8000', lambda: 'http://127.0.0.1:9001' };

describe('functionEnvironment', () => {
  it("resolves the template's tokens to local names and adds Lambda's own variables", () => {
    const env = functionEnvironment(fn, assembly, endpoints);
    expect(env).toMatchObject({
      TABLE_NAME: 'cell-DataTable',
      CELL_ID: 'cell-1',
      REGION: 'eu-west-1',
      AWS_REGION: 'eu-west-1',
      AWS_LAMBDA_FUNCTION_NAME: 'item-master-dev-cell-1-api',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    });
  });

  it('points the AWS SDK at local endpoints only and never at real credentials', () => {
    process.env.AWS_PROFILE = 'production';
    try {
      const env = functionEnvironment(fn, assembly, endpoints);
      expect(env.AWS_ENDPOINT_URL_DYNAMODB).toBe(endpoints.dynamodb);
      expect(env.AWS_ENDPOINT_URL_LAMBDA).toBe(endpoints.lambda);
      expect(env.AWS_ENDPOINT_URL).toMatch(/^http:\/\/127\.0\.0\.1:/);
      expect(env.AWS_ACCESS_KEY_ID).toBe('local');
      expect(env.AWS_PROFILE).toBeUndefined();
      expect(env.AWS_CONFIG_FILE).toContain('nonexistent');
    } finally {
      delete process.env.AWS_PROFILE;
    }
  });

  it('gives the user pool its local id, and sends the JWKS fetch to the local issuer', () => {
    const router = { ...fn, stackName: 'cp', environment: { USER_POOL_ID: { Ref: 'Pool' }, DOMAIN: { Ref: 'Domain' } } };
    const env = functionEnvironment(router, assembly, { ...endpoints, cognitoIdentityProvider: 'http://127.0.0.1:9002' });
    expect(env.USER_POOL_ID).toBe('eu-west-1_localabc12345');
    expect(env.DOMAIN).toBe('app-000000000000');
    expect(env.AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER).toBe('http://127.0.0.1:9002');
    expect(functionEnvironment(fn, assembly, endpoints).AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER).toBeUndefined();
  });

  it('gives state machines and queues their local ARNs and URLs, and sends Step Functions calls to the local emulator', () => {
    const api = {
      ...fn,
      environment: {
        MACHINE: { Ref: 'Orders' },
        MACHINE_NAME: { 'Fn::GetAtt': ['Orders', 'Name'] },
        QUEUE_URL: { Ref: 'Events' },
        QUEUE_ARN: { 'Fn::GetAtt': ['Events', 'Arn'] },
        QUEUE_NAME: { 'Fn::GetAtt': ['Events', 'QueueName'] },
      },
    };
    const env = functionEnvironment(api, assembly, { ...endpoints, stepFunctions: 'http://127.0.0.1:9003' });
    expect(env).toMatchObject({
      MACHINE: 'arn:aws:states:eu-west-1:000000000000:stateMachine:cell-Orders',
      MACHINE_NAME: 'cell-Orders',
      QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/000000000000/cell-Events',
      QUEUE_ARN: 'arn:aws:sqs:eu-west-1:000000000000:cell-Events',
      QUEUE_NAME: 'cell-Events',
      AWS_ENDPOINT_URL_SFN: 'http://127.0.0.1:9003',
    });
    // Another stack's resources are not this stack's Refs.
    expect(() => functionEnvironment({ ...api, stackName: 'cp' }, assembly, endpoints)).toThrow(/MACHINE/);
  });

  it('refuses a token it cannot resolve, naming the variable', () => {
    const odd = { ...fn, environment: { QUEUE_URL: { Ref: 'Queue' } } };
    expect(() => functionEnvironment(odd, assembly, endpoints)).toThrow(/QUEUE_URL/);
  });
});

describe('functionEnvironment with a WebSocket API', () => {
  const api = {
    stackName: 'cp',
    logicalId: 'LiveApi',
    apiId: 'abcde12345',
    stageName: 'live',
    routeSelectionExpression: '$request.body.action',
    routes: [],
  };
  const publisher: LocalFunction = {
    ...fn,
    environment: {
      CALLBACK_URL: {
        'Fn::Join': ['', ['https://', { Ref: 'LiveApi' }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/live']],
      },
      OTHER: 'https://elsewhere.execute-api.eu-west-1.amazonaws.com/live',
    },
  };
  const withApi = { ...assembly, webSocketApis: [{ ...api, stackName: 'cell' }] };

  it("points the API's callback URL at the local endpoint, and leaves other URLs alone", () => {
    const env = functionEnvironment(publisher, withApi, { ...endpoints, executeApi: 'http://127.0.0.1:3001' });
    expect(env.CALLBACK_URL).toBe('http://127.0.0.1:3001/live');
    expect(env.OTHER).toBe('https://elsewhere.execute-api.eu-west-1.amazonaws.com/live');
  });

  it('resolves the API to its local id when no local endpoint is given', () => {
    expect(functionEnvironment(publisher, withApi, endpoints).CALLBACK_URL).toBe('https://abcde12345.execute-api.eu-west-1.amazonaws.com/live');
  });
});
