import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LocalAssembly, LocalSdkCall } from '../../local/assembly.ts';
import { runDeployTimeCalls } from '../../local/deploy-time-calls.ts';
import { resolveValue } from '../../local/template-values.ts';
import { createCellTable } from '../support/tables.ts';

let control: Awaited<ReturnType<typeof createCellTable>>;
beforeAll(async () => {
  control = await createCellTable(inject('dynamoEndpoint'), 'control');
});
afterAll(async () => {
  await control?.drop();
});

/** Two stacks as the app synthesizes them: the control plane publishes its table's name, a cell reads it. */
function assembly(sdkCalls: LocalSdkCall[] = []): LocalAssembly {
  return {
    outdir: '/x',
    region: 'eu-west-1',
    tables: [
      { stackName: 'cp', logicalId: 'RegistryTable', tableName: control.tableName, properties: {} },
      { stackName: 'cell', logicalId: 'DataTable', tableName: 'cell-data', properties: {} },
    ],
    functions: [
      {
        stackName: 'cell',
        logicalId: 'Api',
        functionName: 'app-cell-api',
        codeDir: '/x',
        layerDirs: [],
        handler: 'index.handler',
        timeoutSeconds: 3,
        memoryMb: 128,
        environment: {},
      },
    ],
    aliases: [{ stackName: 'cell', logicalId: 'ApiAlias', functionName: 'app-cell-api', aliasName: 'live' }],
    frontDoor: { functionName: 'router', multiValueHeaders: false },
    ssmParameters: [{ stackName: 'cp', name: '/app/dev/control-plane/table-name', value: { Ref: 'RegistryTable' } }],
    ssmParameterRefs: [{ stackName: 'cell', logicalId: 'SsmParam', parameterName: '/app/dev/control-plane/table-name' }],
    userPools: [],
    userPoolDomains: [],
    stateMachines: [],
    queues: [],
    webSocketApis: [],
    streamMappings: [],
    sdkCalls,
  };
}

const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });

describe('resolveValue', () => {
  it('resolves pseudo parameters, Refs, ARNs, joins and SSM parameters declared by another stack', () => {
    const app = assembly();
    expect(resolveValue({ Ref: 'SsmParam' }, 'cell', app)).toBe(control.tableName);
    expect(resolveValue({ 'Fn::GetAtt': ['Api', 'Arn'] }, 'cell', app)).toBe('arn:aws:lambda:eu-west-1:000000000000:function:app-cell-api');
    expect(resolveValue({ Ref: 'ApiAlias' }, 'cell', app)).toBe('arn:aws:lambda:eu-west-1:000000000000:function:app-cell-api:live');
    expect(() => resolveValue({ Ref: 'ApiAlias' }, 'cp', app)).toThrow(/cannot resolve/);
    expect(resolveValue({ 'Fn::GetAtt': ['DataTable', 'Arn'] }, 'cell', app)).toBe('arn:aws:dynamodb:eu-west-1:000000000000:table/cell-data');
    expect(resolveValue(join('arn:', { Ref: 'AWS::Partition' }, ':', { Ref: 'AWS::AccountId' }, ':', 7), 'cell', app)).toBe('arn:aws:000000000000:7');
  });

  it('refuses what it cannot resolve rather than guessing', () => {
    const app = assembly();
    expect(() => resolveValue({ Ref: 'Queue' }, 'cell', app)).toThrow(/cannot resolve {"Ref":"Queue"} locally/);
    expect(() => resolveValue({ Ref: 'DataTable' }, 'cp', app)).toThrow(/cannot resolve/);
    const missing = { ...app, ssmParameters: [] };
    expect(() => resolveValue({ Ref: 'SsmParam' }, 'cell', missing)).toThrow(/no stack of the app declares the SSM parameter/);
  });
});

describe('runDeployTimeCalls', () => {
  const call = (value: string): string =>
    JSON.stringify({
      service: 'DynamoDB',
      action: 'putItem',
      parameters: { TableName: '@TABLE@', Item: { pk: { S: 'CELL' }, sk: { S: 'CELL#a' }, value: { S: value } } },
    });
  const tokenized = (text: string) => join(...text.split('@TABLE@').flatMap((part, n) => (n ? [{ Ref: 'SsmParam' }, part] : [part])));
  const resource = (value: string): LocalSdkCall => ({
    stackName: 'cell',
    logicalId: 'Registration',
    create: tokenized(call(value)),
    update: tokenized(call(value)),
    delete: tokenized(
      JSON.stringify({
        service: 'DynamoDB',
        action: 'deleteItem',
        parameters: { TableName: '@TABLE@', Key: { pk: { S: 'CELL' }, sk: { S: 'CELL#a' } } },
      }),
    ),
  });
  const read = async () =>
    (await control.client.send(new GetItemCommand({ TableName: control.tableName, Key: { pk: { S: 'CELL' }, sk: { S: 'CELL#a' } } }))).Item?.value?.S;

  it('creates, updates when the parameters change, and deletes what is gone, as CloudFormation would', async () => {
    const first = await runDeployTimeCalls(control.client, assembly([resource('one')]));
    expect(await read()).toBe('one');
    const second = await runDeployTimeCalls(control.client, assembly([resource('two')]), first);
    expect(await read()).toBe('two');
    await runDeployTimeCalls(control.client, assembly([]), second);
    expect(await read()).toBeUndefined();
  });

  it('ignores the errors the call says to ignore, and names the resource on any other', async () => {
    const conditional = (ignore?: string): LocalSdkCall => {
      const text = JSON.stringify({
        service: 'DynamoDB',
        action: 'putItem',
        parameters: { TableName: control.tableName, Item: { pk: { S: 'X' }, sk: { S: 'Y' } }, ConditionExpression: 'attribute_exists(pk)' },
        ...(ignore && { ignoreErrorCodesMatching: ignore }),
      });
      return { stackName: 'cp', logicalId: 'Seed', create: text, update: text, delete: undefined };
    };
    await runDeployTimeCalls(control.client, assembly([conditional('ConditionalCheckFailedException')]));
    await expect(runDeployTimeCalls(control.client, assembly([conditional()]))).rejects.toThrow(
      /cp\/Seed: putItem failed: ConditionalCheckFailedException/,
    );
    const s3 = { ...conditional(), create: JSON.stringify({ service: 'S3', action: 'putObject' }) };
    await expect(runDeployTimeCalls(control.client, assembly([s3]))).rejects.toThrow(/DynamoDB only, not S3/);
  });
});
