import { generateKeyPair } from 'jose';
import { signAccessToken, startLocalIssuer, type AccessTokenSpec, type LocalIssuer } from '../../local/issuer.ts';

export const TEST_POOL_ID = 'us-east-1_TestPool1';
export const TEST_RESOURCE_SERVER = 'item-master';

export interface TestIssuer extends LocalIssuer {
  /** A token with the issuer's key id and claims, signed by a key it never had. */
  forge(token: Omit<AccessTokenSpec, 'issuer'>): Promise<string>;
}

/** A local issuer for tests, with a way to forge its tokens. */
export async function testIssuer(userPoolId = TEST_POOL_ID): Promise<TestIssuer> {
  const issuer = await startLocalIssuer({ userPoolId, resourceServer: TEST_RESOURCE_SERVER });
  const jwks = (await (await fetch(`${issuer.url}/${userPoolId}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
  const kid = jwks.keys[0]!.kid;
  const { privateKey: strangerKey } = await generateKeyPair('RS256');
  return { ...issuer, forge: (token) => signAccessToken(strangerKey, kid, { issuer: issuer.issuer, ...token }) };
}

/** The scope string of a token, from bare scope names. */
export const scopeOf = (...scopes: string[]) => scopes.map((scope) => `${TEST_RESOURCE_SERVER}/${scope}`).join(' ');
