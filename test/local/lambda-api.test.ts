import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aliasNames, functionReference, startLambdaApi } from '../../local/lambda-api.ts';

const invoked: Array<{ name: string; event: unknown }> = [];
const host = {
  has: (name: string) => name === 'app-cell-1-api',
  invoke: async (name: string, event: unknown) => {
    invoked.push({ name, event });
    return { statusCode: 200 };
  },
};
let api: Awaited<ReturnType<typeof startLambdaApi>>;

beforeAll(async () => {
  api = await startLambdaApi(host, 0, aliasNames([{ functionName: 'app-cell-1-api', aliasName: 'live' }]));
});
afterAll(async () => {
  await api?.close();
});

async function invoke(functionName: string, query = ''): Promise<{ status: number; body: string }> {
  const response = await fetch(`${api.url}/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations${query}`, {
    method: 'POST',
    body: '{"n":1}',
  });
  return { status: response.status, body: await response.text() };
}

describe('the local Lambda API', () => {
  it('runs a function by its name, its ARN, and qualified by $LATEST or one of its aliases', async () => {
    const arn = 'arn:aws:lambda:eu-west-1:000000000000:function:app-cell-1-api';
    for (const name of ['app-cell-1-api', arn, 'app-cell-1-api:live', `${arn}:live`, `${arn}:$LATEST`, '000000000000:function:app-cell-1-api:live']) {
      invoked.length = 0;
      expect(await invoke(name), name).toEqual({ status: 200, body: '{"statusCode":200}' });
      expect(invoked).toEqual([{ name: 'app-cell-1-api', event: { n: 1 } }]);
    }
    expect((await invoke('app-cell-1-api', '?Qualifier=live')).status).toBe(200);
  });

  it('answers 404 for a qualifier that is no alias of the function, and for an unknown function, as Lambda does', async () => {
    invoked.length = 0;
    for (const [name, query] of [
      ['app-cell-1-api:canary', ''],
      ['app-cell-1-api', '?Qualifier=7'],
      ['app-cell-2-api:live', ''],
    ] as const) {
      const { status, body } = await invoke(name, query);
      expect(status, name).toBe(404);
      expect(body).toMatch(/Function not found: app-cell-\d-api/);
    }
    expect(invoked).toEqual([]);
  });
});

describe('functionReference', () => {
  it('reads the name and the qualifier of a name, a partial ARN and an ARN', () => {
    expect(functionReference('f')).toEqual({ name: 'f' });
    expect(functionReference('f:live')).toEqual({ name: 'f', qualifier: 'live' });
    expect(functionReference('123456789012:function:f')).toEqual({ name: 'f' });
    expect(functionReference('123456789012:function:f:3')).toEqual({ name: 'f', qualifier: '3' });
    expect(functionReference('arn:aws:lambda:eu-west-1:123456789012:function:f')).toEqual({ name: 'f' });
    expect(functionReference('arn:aws:lambda:eu-west-1:123456789012:function:f:live')).toEqual({ name: 'f', qualifier: 'live' });
  });
});
