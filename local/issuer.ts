import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as z from 'zod';
import { SCOPES, TENANT_CLAIM } from '../layers/shared/src/contracts/scopes.ts';
import { ID_PATTERN, ID_RULE } from '../layers/shared/src/ids.ts';
import { close, listen, readBody, refuseBody } from './http.ts';

/** A token request is a few hundred bytes. */
const MAX_TOKEN_REQUEST_BYTES = 64 * 1024;

export interface LocalIssuerOptions {
  /** The user pool the tokens claim to come from (its id names the issuer). */
  readonly userPoolId: string;
  /** The resource server's identifier: scopes are issued as `<identifier>/<scope>`. */
  readonly resourceServer: string;
  /** Port on 127.0.0.1; 0 picks a free one. @default 0 */
  readonly port?: number;
}

export const tokenRequestSchema = z.strictObject({
  tenantId: z.string().regex(ID_PATTERN, ID_RULE),
  scopes: z
    .array(z.enum(SCOPES))
    .min(1)
    .default([...SCOPES]),
  /** @default local-<tenantId> */
  clientId: z.string().min(1).max(128).optional(),
  expiresInSeconds: z.number().int().min(1).max(86_400).default(3_600),
});
export type TokenRequest = z.input<typeof tokenRequestSchema>;

export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: 'Bearer';
  readonly expires_in: number;
}

export interface LocalIssuer {
  /** Stands in for Cognito's endpoint: `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` of the functions. */
  readonly url: string;
  /** `POST` a TokenRequest here for a token. */
  readonly tokenUrl: string;
  readonly issuer: string;
  issue(request: TokenRequest): Promise<TokenResponse>;
  /** Signs any claims with the issuer's key: for tests of what the verifier refuses. */
  sign(token: Omit<AccessTokenSpec, 'issuer'> & { issuer?: string }): Promise<string>;
  close(): Promise<void>;
}

export const LOCAL_TOKEN_PATH = '/_local/token';

/**
 * Cognito's part in the local runtime: a key pair made at start, its public
 * half served as the pool's JWKS (`/<userPoolId>/.well-known/jwks.json`, the
 * path Cognito serves it at), and access tokens shaped like Cognito's for a
 * client-credentials grant, the tenant claim included. The router verifies
 * them with the same code as on AWS. The private key never leaves memory.
 */
export async function startLocalIssuer(options: LocalIssuerOptions): Promise<LocalIssuer> {
  const region = options.userPoolId.split('_')[0];
  const issuer = `https://cognito-idp.${region}.amazonaws.com/${options.userPoolId}`;
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = randomUUID();
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } satisfies JWK] };

  const issue = async (request: TokenRequest): Promise<TokenResponse> => {
    const { tenantId, scopes, clientId, expiresInSeconds } = tokenRequestSchema.parse(request);
    const client = clientId ?? `local-${tenantId}`;
    const token = await signAccessToken(privateKey, kid, {
      issuer,
      clientId: client,
      scope: scopes.map((scope) => `${options.resourceServer}/${scope}`).join(' '),
      claims: { [TENANT_CLAIM]: tenantId },
      expiresInSeconds,
    });
    return { access_token: token, token_type: 'Bearer', expires_in: expiresInSeconds };
  };

  const jwksPath = `/${options.userPoolId}/.well-known/jwks.json`;
  const server = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => send(res, 500, { error: (error as Error).message }));
  });
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && pathname === jwksPath) return send(res, 200, jwks);
    if (req.method === 'POST' && pathname === LOCAL_TOKEN_PATH) {
      const raw = await readBody(req, MAX_TOKEN_REQUEST_BYTES);
      if (!raw) return refuseBody(res, 413, { 'content-type': 'application/json' }, JSON.stringify({ error: 'the body is too large' }));
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return send(res, 400, { error: 'the body must be JSON' });
      }
      const parsed = tokenRequestSchema.safeParse(body);
      if (!parsed.success) {
        return send(res, 400, { error: parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ') });
      }
      return send(res, 200, await issue(parsed.data));
    }
    return send(res, 404, { error: `no route for ${req.method} ${pathname}` });
  }

  await listen(server, options.port ?? 0);
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    tokenUrl: `${url}${LOCAL_TOKEN_PATH}`,
    issuer,
    issue,
    sign: (token) => signAccessToken(privateKey, kid, { issuer, ...token }),
    close: () => close(server),
  };
}

export interface AccessTokenSpec {
  readonly issuer: string;
  /** @default - no client_id claim */
  readonly clientId?: string;
  readonly scope: string;
  /** Claims added to Cognito's, such as the tenant. */
  readonly claims?: Record<string, unknown>;
  /** Negative for a token that has already expired. */
  readonly expiresInSeconds: number;
  /** @default access */
  readonly tokenUse?: string;
}

/** The claims Cognito puts in a client-credentials access token, plus any extra. */
export async function signAccessToken(key: CryptoKey, kid: string, token: AccessTokenSpec): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({
    ...token.claims,
    ...(token.clientId !== undefined && { client_id: token.clientId }),
    token_use: token.tokenUse ?? 'access',
    scope: token.scope,
    auth_time: now,
    version: 2,
    jti: randomUUID(),
  })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuer(token.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + token.expiresInSeconds);
  if (token.clientId !== undefined) jwt.setSubject(token.clientId);
  return jwt.sign(key);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
