import { bearerToken, TokenVerifier, tokenVerifierOptionsFromEnv, type AuthResult } from '@item-master/shared';
import { CognitoJwtVerifier } from 'aws-jwt-verify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { scopeOf, TEST_POOL_ID, TEST_RESOURCE_SERVER, testIssuer, type TestIssuer } from '../../support/tokens.ts';

let issuer: TestIssuer;
const acmeWrite = { tenantId: 'acme', scope: 'items.write' } as const;

beforeAll(async () => {
  issuer = await testIssuer();
});
afterAll(() => issuer.close());

const bearer = (token: string) => `Bearer ${token}`;
function failure(result: AuthResult) {
  if (result.ok) throw new Error('expected a refusal');
  return result;
}

// Every behaviour holds whether verified tokens are remembered or not.
describe.each([
  ['every token verified', 0],
  ['verified tokens remembered', 100],
])('TokenVerifier, %s', (_mode, cachedTokens) => {
  let verifier: TokenVerifier;
  beforeAll(() => {
    verifier = new TokenVerifier({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: issuer.url, cachedTokens });
  });

  it('accepts a token of the issuer for its own tenant and scope, and says who calls', async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme', scopes: ['items.read', 'items.write'] });
    const result = await verifier.authorize(bearer(access_token), acmeWrite);
    expect(result).toEqual({ ok: true, caller: { clientId: 'local-acme', tenantId: 'acme', scopes: ['items.read', 'items.write'] } });
  });

  it('takes the scheme in any case, as RFC 6750 allows', async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme' });
    expect((await verifier.authorize(`bearer ${access_token}`, acmeWrite)).ok).toBe(true);
  });

  it.each([
    [
      'a forged signature',
      () => issuer.forge({ clientId: 'c1', scope: scopeOf('items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: 600 }),
      /signature/,
    ],
    [
      'an expired token',
      () => issuer.sign({ clientId: 'c1', scope: scopeOf('items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: -5 }),
      /expired/,
    ],
    [
      'another issuer',
      () =>
        issuer.sign({
          issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other',
          clientId: 'c1',
          scope: scopeOf('items.write'),
          claims: { tenant_id: 'acme' },
          expiresInSeconds: 600,
        }),
      /not issued by this service/,
    ],
    [
      'an ID token',
      () => issuer.sign({ clientId: 'c1', tokenUse: 'id', scope: scopeOf('items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: 600 }),
      /not an access token/,
    ],
    [
      'a token naming no client',
      () => issuer.sign({ scope: scopeOf('items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: 600 }),
      /names no client/,
    ],
    ['a token that is not a JWT', async () => 'not-a-jwt', /malformed/],
  ])('refuses %s with 401 invalid_token', async (_name, token, message) => {
    const result = failure(await verifier.authorize(bearer(await token()), acmeWrite));
    expect(result.status).toBe(401);
    expect(result.message).toMatch(message);
    expect(result.headers['www-authenticate']).toMatch(/^Bearer realm="item-master", error="invalid_token"/);
  });

  it('refuses a token without the route’s scope with 403 insufficient_scope naming the scope', async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme', scopes: ['items.read'] });
    const result = failure(await verifier.authorize(bearer(access_token), acmeWrite));
    expect(result.status).toBe(403);
    expect(result.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(result.headers['www-authenticate']).toContain('scope="item-master/items.write"');
  });

  it('refuses another tenant’s token, and a client bound to no tenant, with 403', async () => {
    const { access_token: globex } = await issuer.issue({ tenantId: 'globex' });
    expect(failure(await verifier.authorize(bearer(globex), acmeWrite))).toMatchObject({ status: 403, message: 'the token is for another tenant' });
    const unbound = await issuer.sign({ clientId: 'ops-client', scope: scopeOf('items.write'), expiresInSeconds: 600 });
    expect(failure(await verifier.authorize(bearer(unbound), acmeWrite))).toMatchObject({
      status: 403,
      message: 'the token is not bound to a tenant',
    });
  });

  it('answers a missing header with the bare challenge and a malformed one with invalid_request', async () => {
    const missing = failure(await verifier.authorize(undefined, acmeWrite));
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="item-master"');
    const { access_token } = await issuer.issue({ tenantId: 'acme' });
    for (const header of [
      'Basic dXNlcjpwYXNz',
      'Bearer',
      'Bearer ',
      `Bearer  ${access_token}`,
      `Bearer ${access_token} extra`,
      access_token,
      'Bearer a"b',
    ]) {
      const result = failure(await verifier.authorize(header, acmeWrite));
      expect(result.status, header).toBe(401);
      expect(result.headers['www-authenticate'], header).toContain('error="invalid_request"');
    }
  });

  it('never puts the token in what it answers', async () => {
    const token = await issuer.sign({ clientId: 'c1', scope: scopeOf('items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: -5 });
    const result = failure(await verifier.authorize(bearer(token), acmeWrite));
    expect(JSON.stringify(result)).not.toContain(token.split('.')[1]);
  });

  it('answers 503, not 401, while the signing keys cannot be fetched', async () => {
    const cut = new TokenVerifier({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: 'http://127.0.0.1:9' });
    const { access_token } = await issuer.issue({ tenantId: 'acme' });
    expect(failure(await cut.authorize(bearer(access_token), acmeWrite))).toMatchObject({ status: 503, headers: { 'retry-after': '5' } });
  });
});

describe('TokenVerifier remembering verified tokens', () => {
  const options = () => ({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: issuer.url, cachedTokens: 2 });
  afterEach(() => vi.restoreAllMocks());

  it('checks a token’s signature once, and its scope and tenant on every request', async () => {
    const verifier = new TokenVerifier(options());
    const signatureChecks = vi.spyOn(CognitoJwtVerifier.prototype, 'verify');
    const { access_token } = await issuer.issue({ tenantId: 'acme', scopes: ['items.read'] });
    expect((await verifier.authorize(bearer(access_token), { tenantId: 'acme', scope: 'items.read' })).ok).toBe(true);
    expect((await verifier.authorize(bearer(access_token), { tenantId: 'acme', scope: 'items.read' })).ok).toBe(true);
    expect(signatureChecks).toHaveBeenCalledTimes(1);
    expect(failure(await verifier.authorize(bearer(access_token), acmeWrite))).toMatchObject({
      status: 403,
      message: expect.stringMatching(/lacks the scope/),
    });
    expect(failure(await verifier.authorize(bearer(access_token), { tenantId: 'globex', scope: 'items.read' }))).toMatchObject({
      status: 403,
      message: 'the token is for another tenant',
    });
    expect(signatureChecks).toHaveBeenCalledTimes(1);
  });

  it('never remembers a token it refused, and keeps only as many as it is told', async () => {
    const verifier = new TokenVerifier(options());
    const signatureChecks = vi.spyOn(CognitoJwtVerifier.prototype, 'verify');
    const forged = await issuer.forge({ clientId: 'c1', scope: scopeOf('items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: 600 });
    for (let i = 0; i < 2; i++) expect(failure(await verifier.authorize(bearer(forged), acmeWrite)).status).toBe(401);
    expect(signatureChecks).toHaveBeenCalledTimes(2);
    // quick-lru keeps the newest `cachedTokens` and the generation before them: 5 tokens through a cache of 2 push the first out.
    const tokens = await Promise.all(
      ['t1', 't2', 't3', 't4', 't5'].map(async (client) => (await issuer.issue({ tenantId: 'acme', clientId: client })).access_token),
    );
    for (const token of tokens) expect((await verifier.authorize(bearer(token), acmeWrite)).ok).toBe(true);
    signatureChecks.mockClear();
    await verifier.authorize(bearer(tokens[4]!), acmeWrite);
    expect(signatureChecks).toHaveBeenCalledTimes(0);
    await verifier.authorize(bearer(tokens[0]!), acmeWrite);
    expect(signatureChecks).toHaveBeenCalledTimes(1);
  });

  it('forgets a token when it expires: it is refused as expired', async () => {
    const verifier = new TokenVerifier(options());
    const token = await issuer.sign({ clientId: 'c1', scope: scopeOf('items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: 1 });
    expect((await verifier.authorize(bearer(token), acmeWrite)).ok).toBe(true);
    const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number;
    // Wait until the token has expired by the clock (whole seconds: past exp, not near it).
    while (Date.now() < (exp + 1) * 1000) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(failure(await verifier.authorize(bearer(token), acmeWrite))).toMatchObject({ status: 401, message: 'the token has expired' });
  });
});

describe('bearerToken', () => {
  it('splits a well-formed header and names the problem with others', () => {
    expect(bearerToken('Bearer abc.def-_~+/.ghi==')).toEqual({ ok: true, token: 'abc.def-_~+/.ghi==' });
    expect(bearerToken(undefined)).toEqual({ ok: false, problem: 'missing' });
    expect(bearerToken('  ')).toEqual({ ok: false, problem: 'missing' });
    expect(bearerToken('Token abc')).toEqual({ ok: false, problem: 'malformed' });
  });
});

describe('TokenVerifier, word for word', () => {
  let verifier: TokenVerifier;
  beforeAll(() => {
    verifier = new TokenVerifier({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: issuer.url });
  });
  const token = (spec: Partial<Parameters<TestIssuer['sign']>[0]> = {}) =>
    issuer.sign({ clientId: 'c1', scope: scopeOf('items.write'), claims: { tenant_id: 'acme' }, expiresInSeconds: 600, ...spec });

  it('says what a missing and a malformed header lack', async () => {
    expect(failure(await verifier.authorize(undefined, acmeWrite))).toEqual({
      ok: false,
      status: 401,
      code: 'unauthorized',
      message: 'a bearer token is required',
      headers: { 'www-authenticate': 'Bearer realm="item-master"' },
    });
    const message = 'the Authorization header must be "Bearer <token>"';
    expect(failure(await verifier.authorize('Basic dXNlcjpwYXNz', acmeWrite))).toEqual({
      ok: false,
      status: 401,
      code: 'unauthorized',
      message,
      headers: { 'www-authenticate': `Bearer realm="item-master", error="invalid_request", error_description="${message}"` },
    });
  });

  it('names the scope a token lacks, in the message and the challenge', async () => {
    const { access_token } = await issuer.issue({ tenantId: 'acme', scopes: ['items.read'] });
    const message = 'the token lacks the scope item-master/items.write';
    expect(failure(await verifier.authorize(bearer(access_token), acmeWrite))).toEqual({
      ok: false,
      status: 403,
      code: 'forbidden',
      message,
      headers: {
        'www-authenticate': `Bearer realm="item-master", error="insufficient_scope", error_description="${message}", scope="item-master/items.write"`,
      },
    });
  });

  it('refuses a token not valid yet, an empty client and an empty tenant', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(failure(await verifier.authorize(bearer(await token({ claims: { tenant_id: 'acme', nbf: now + 600 } })), acmeWrite)).message).toBe(
      'the token is not valid yet',
    );
    expect(failure(await verifier.authorize(bearer(await token({ clientId: '' })), acmeWrite)).message).toBe('the token names no client');
    expect(failure(await verifier.authorize(bearer(await token({ claims: { tenant_id: '' } })), acmeWrite))).toMatchObject({
      status: 403,
      message: 'the token is not bound to a tenant',
    });
  });

  it("checks the tenant only when the route names one, and gives the caller only the API's own scopes", async () => {
    const mixed = await token({ scope: `openid other-api/items.write ${scopeOf('items.write')}` });
    expect(await verifier.verify(mixed, { scope: 'items.write' })).toEqual({
      ok: true,
      caller: { clientId: 'c1', tenantId: 'acme', scopes: ['items.write'] },
    });
  });

  it('answers 503 auth_unavailable, with its reason, while the signing keys cannot be fetched; hydrate fails then too', async () => {
    const cut = new TokenVerifier({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: 'http://127.0.0.1:9' });
    await expect(cut.hydrate()).rejects.toThrow();
    expect(failure(await cut.authorize(bearer(await token()), acmeWrite))).toEqual({
      ok: false,
      status: 503,
      code: 'auth_unavailable',
      message: 'tokens cannot be verified right now, retry later',
      headers: { 'retry-after': '5' },
    });
    await expect(verifier.hydrate()).resolves.toBeUndefined();
  });

  it('forgets a remembered token at the very millisecond it expires', async () => {
    const signed = await token();
    const exp = JSON.parse(Buffer.from(signed.split('.')[1]!, 'base64url').toString()).exp as number;
    let now = exp * 1000 - 1;
    const remembering = new TokenVerifier(
      { userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER, endpoint: issuer.url, cachedTokens: 10 },
      () => now,
    );
    const signatureChecks = vi.spyOn(CognitoJwtVerifier.prototype, 'verify');
    try {
      await remembering.authorize(bearer(signed), acmeWrite);
      await remembering.authorize(bearer(signed), acmeWrite);
      expect(signatureChecks).toHaveBeenCalledTimes(1);
      now = exp * 1000;
      await remembering.authorize(bearer(signed), acmeWrite);
      expect(signatureChecks).toHaveBeenCalledTimes(2);
    } finally {
      signatureChecks.mockRestore();
    }
  });
});

describe('tokenVerifierOptionsFromEnv', () => {
  const good = { USER_POOL_ID: TEST_POOL_ID, AUTH_RESOURCE_SERVER: TEST_RESOURCE_SERVER };

  it('reads the pool, the resource server and, only when set, the endpoint', () => {
    expect(tokenVerifierOptionsFromEnv(good)).toStrictEqual({ userPoolId: TEST_POOL_ID, resourceServer: TEST_RESOURCE_SERVER });
    expect(tokenVerifierOptionsFromEnv({ ...good, AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: 'http://127.0.0.1:9229' })).toStrictEqual({
      userPoolId: TEST_POOL_ID,
      resourceServer: TEST_RESOURCE_SERVER,
      endpoint: 'http://127.0.0.1:9229',
    });
  });

  it('names every problem at once', () => {
    expect(() => tokenVerifierOptionsFromEnv({ AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: 'not a url' })).toThrow(
      new Error(
        'token verification environment: USER_POOL_ID: must be a Cognito user pool id; AUTH_RESOURCE_SERVER: must be set; AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: must be a URL',
      ),
    );
    expect(() => tokenVerifierOptionsFromEnv({ ...good, USER_POOL_ID: 'Stryker was here!' })).toThrow('USER_POOL_ID: must be a Cognito user pool id');
  });
});

describe('bearerToken, at the edges', () => {
  it('takes surrounding whitespace, and nothing before the scheme', () => {
    expect(bearerToken('  Bearer abc  ')).toEqual({ ok: true, token: 'abc' });
    expect(bearerToken('xBearer abc')).toEqual({ ok: false, problem: 'malformed' });
  });
});
