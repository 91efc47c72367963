import { TokenVerifier } from '@item-master/shared';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeConnect } from '../../../functions/live-authorizer/authorizer.ts';
import { scopeOf, TEST_POOL_ID, TEST_RESOURCE_SERVER, testIssuer, type TestIssuer } from '../../support/tokens.ts';

describe('the $connect authorizer', () => {
  let issuer: TestIssuer;
  let verifier: TokenVerifier;
  beforeAll(async () => {
    issuer = await testIssuer();
    verifier = new TokenVerifier({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: issuer.url });
  });
  afterAll(() => issuer?.close());
  const event = (query: Record<string, string>) =>
    ({
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:us-east-1:1:api/prod/$connect',
      queryStringParameters: query,
    }) as unknown as APIGatewayRequestAuthorizerEvent;

  it("allows a valid token and binds the connection to the token's tenant", async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme', scopes: ['items.read'] });
    const result = await authorizeConnect(verifier, event({ token: access_token }));
    expect(result.policyDocument.Statement).toEqual([
      expect.objectContaining({ Effect: 'Allow', Resource: 'arn:aws:execute-api:us-east-1:1:api/prod/$connect' }),
    ]);
    expect(result.context).toMatchObject({ tenantId: 'acme' });
  });

  it('refuses no token, a forged one and one without items.read', async () => {
    await expect(authorizeConnect(verifier, event({}))).rejects.toThrow('Unauthorized');
    const forged = await issuer.forge({ clientId: 'c1', scope: scopeOf('items.read'), claims: { tenant_id: 'acme' }, expiresInSeconds: 600 });
    await expect(authorizeConnect(verifier, event({ token: forged }))).rejects.toThrow('Unauthorized');
    const writer = (await issuer.issue({ tenantId: 'acme', scopes: ['orders.write'] })).access_token;
    await expect(authorizeConnect(verifier, event({ token: writer }))).rejects.toThrow('Unauthorized');
  });
});
