import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import * as presets from '../../../layers/shared/src/sdk-timeouts.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../../local/dynamodb-local.ts';
import { startHangingServer } from '../../support/hanging-server.ts';

const root = path.resolve(import.meta.dirname, '../../..');

/** Every `new XClient(...)` and `new AwsApi(...)` (the router's signed calls) in the code that deploys or that operators run, with its arguments. */
function clientConstructions(): Array<{ file: string; call: string }> {
  const files = [
    ...readdirSync(path.join(root, 'functions'), { recursive: true, encoding: 'utf8' }).map((f) => path.join('functions', f)),
    ...['control-plane', 'routing', 'tools'].flatMap((dir) =>
      readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' }).map((f) => path.join(dir, f)),
    ),
  ].filter((f) => f.endsWith('.ts'));
  return files.flatMap((file) => {
    const source = readFileSync(path.join(root, file), 'utf8');
    return [...source.matchAll(/new (\w+Client|AwsApi)\(([^;]*?)\)\)?[;,]?\n/g)].map((match) => ({ file, call: match[0].trim() }));
  });
}

describe('SDK client timeouts', () => {
  it('every SDK client the functions and the operator tools make takes one of the presets', () => {
    const calls = clientConstructions();
    // The scan finds what it must: the router's and the cell API's clients at least.
    expect(calls.map(({ file }) => file)).toEqual(expect.arrayContaining([expect.stringMatching(/router/), expect.stringMatching(/cell-api/)]));
    const takesPreset = (call: string) =>
      call.startsWith('new AwsApi(')
        ? /new AwsApi\('\w+', (CONTROL_PLANE_READ|CELL_INVOKE|DATA_PLANE|OPERATOR)\)/.test(call)
        : call.includes('sdkClientConfig(');
    expect(calls.filter(({ call }) => !takesPreset(call)).map(({ file, call }) => `${file}: ${call}`)).toEqual([]);
  });

  it.each(Object.entries(presets).filter(([, value]) => typeof value === 'object') as Array<[string, presets.SdkTimeouts]>)(
    '%s really throws on a request timeout, not only warns',
    (_name, timeouts) => {
      expect(presets.sdkClientConfig(timeouts).requestHandler).toEqual({
        connectionTimeout: timeouts.connectMs,
        requestTimeout: timeouts.requestMs,
        throwOnRequestTimeout: true,
      });
    },
  );

  it('a data-plane client gives up on a server that accepts and never answers, after its attempts', async () => {
    const hung = await startHangingServer();
    const client = new DynamoDBClient({
      endpoint: hung.url,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      ...presets.sdkClientConfig(presets.DATA_PLANE),
    });
    try {
      const error = await client.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'a' } } })).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).name).toBe('TimeoutError');
      expect(hung.connections()).toBe(presets.DATA_PLANE.maxAttempts);
    } finally {
      client.destroy();
      await hung.close();
    }
  });
});
