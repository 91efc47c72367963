import { CognitoJwtVerifier } from 'aws-jwt-verify';
import {
  CognitoJwtInvalidTokenUseError,
  FetchError,
  JwtBaseError,
  JwtExpiredError,
  JwtInvalidIssuerError,
  JwtInvalidSignatureAlgorithmError,
  JwtInvalidSignatureError,
  JwtNotBeforeError,
  JwtParseError,
  KidNotFoundInJwksError,
  ParameterValidationError,
  WaitPeriodNotYetEndedJwkError,
} from 'aws-jwt-verify/error';
import { SimpleFetcher, type Fetcher } from 'aws-jwt-verify/https';
import { Agent as HttpAgent } from 'node:http';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import QuickLRU from 'quick-lru';

import { TENANT_CLAIM, type Scope } from './contracts/scopes.ts';

export { SCOPES, TENANT_CLAIM, type Scope } from './contracts/scopes.ts';

export interface TokenVerifierOptions {
  /** The Cognito user pool that issues the tokens: its id fixes the issuer and the JWKS. */
  readonly userPoolId: string;
  /** Identifier of the pool's resource server: scopes arrive as `<identifier>/<scope>`. */
  readonly resourceServer: string;
  /**
   * Where the Cognito identity provider answers, when not at AWS (the local
   * runtime sets `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`, as for every
   * other AWS service): the JWKS is then fetched from
   * `<endpoint>/<userPoolId>/.well-known/jwks.json`. The issuer checked is
   * Cognito's either way.
   * @default - Cognito's own endpoint
   */
  readonly endpoint?: string;
  /**
   * How many verified tokens to remember, each until it expires, keyed by
   * the whole token: a token seen again skips the signature check. Scope
   * and tenant are checked on every request all the same. The cache
   * (quick-lru) holds the newest `cachedTokens` and the generation before
   * them: at most twice as many.
   * @default 0 - every token is verified every time
   */
  readonly cachedTokens?: number;
}

const USER_POOL_ID = /^[a-z]{2}(?:-[a-z]+)+-\d_[A-Za-z0-9]+$/;

/**
 * The verifier's options from a function's environment: `USER_POOL_ID`,
 * `AUTH_RESOURCE_SERVER`, and the AWS SDK's own per-service endpoint
 * variable, `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`, which only the
 * local runtime sets. Throws, naming every problem, when they are unusable.
 */
export function tokenVerifierOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): TokenVerifierOptions {
  const problems: string[] = [];
  const userPoolId = env.USER_POOL_ID ?? '';
  const resourceServer = env.AUTH_RESOURCE_SERVER ?? '';
  const endpoint = env.AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER;
  if (!USER_POOL_ID.test(userPoolId)) problems.push('USER_POOL_ID: must be a Cognito user pool id');
  if (resourceServer === '') problems.push('AUTH_RESOURCE_SERVER: must be set');
  if (endpoint !== undefined && !URL.canParse(endpoint)) problems.push('AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: must be a URL');
  if (problems.length > 0) throw new Error(`token verification environment: ${problems.join('; ')}`);
  return { userPoolId, resourceServer, ...(endpoint !== undefined && { endpoint }) };
}

/** Who is calling, from a verified token. */
export interface Caller {
  readonly clientId: string;
  readonly tenantId: string;
  /** The granted scopes, without the resource-server prefix. */
  readonly scopes: readonly string[];
}

/** Why a request was refused, shaped for an HTTP answer. */
export interface AuthFailure {
  readonly status: 401 | 403 | 503;
  readonly code: 'unauthorized' | 'forbidden' | 'auth_unavailable';
  readonly message: string;
  /** `WWW-Authenticate` (RFC 6750) on 401 and 403, `Retry-After` on 503. */
  readonly headers: Readonly<Record<string, string>>;
}

export type AuthResult = { readonly ok: true; readonly caller: Caller } | ({ readonly ok: false } & AuthFailure);

export interface Requirement {
  /**
   * The tenant the request is for: the token must be bound to it.
   * @default - any tenant: the token must be bound to one (a WebSocket `$connect` learns it from the token)
   */
  readonly tenantId?: string;
  /** The scope the route needs. */
  readonly scope: Scope;
}

/**
 * Verifies Cognito access tokens for the front door and the WebSocket
 * `$connect` alike: signature against the pool's JWKS (fetched once and
 * cached), issuer, expiry, `token_use` = access, a client id, the route's
 * scope, and the tenant binding. Nothing about the token is ever logged or
 * echoed back.
 */
export class TokenVerifier {
  readonly #verifier;
  readonly #resourceServer: string;
  /** Verified payloads by token, while they are valid. */
  readonly #verified: QuickLRU<string, JwtPayload> | undefined;
  readonly #now: () => number;

  constructor(options: TokenVerifierOptions, now: () => number = Date.now) {
    this.#resourceServer = options.resourceServer;
    this.#now = now;
    this.#verified = options.cachedTokens ? new QuickLRU({ maxSize: options.cachedTokens }) : undefined;
    const jwksCache = options.endpoint ? new SimpleJwksCache({ fetcher: new EndpointFetcher(options.endpoint) }) : undefined;
    this.#verifier = CognitoJwtVerifier.create(
      {
        userPoolId: options.userPoolId,
        tokenUse: 'access',
        // Tenant clients are created at run time; the binding claim below is what ties one to a tenant.
        clientId: null,
        customJwtCheck: ({ payload }) => {
          if (typeof payload.client_id !== 'string' || payload.client_id === '') throw new MissingClientError();
        },
      },
      jwksCache ? { jwksCache } : undefined,
    );
  }

  /** Fetches the JWKS now (at init), so that the first request does not wait for it. */
  async hydrate(): Promise<void> {
    await this.#verifier.hydrate();
  }

  /** Checks an `Authorization` header value against what the route needs. */
  async authorize(authorization: string | undefined, required: Requirement): Promise<AuthResult> {
    const bearer = bearerToken(authorization);
    if (!bearer.ok) return refuse(unauthorized(this.#resourceServer, bearer.problem));
    return this.verify(bearer.token, required);
  }

  /** Checks a bare token (a WebSocket query string carries one) against what the route needs. */
  async verify(token: string, required: Requirement): Promise<AuthResult> {
    let payload = this.#remembered(token);
    if (!payload) {
      try {
        payload = await this.#verifier.verify(token);
      } catch (error) {
        return refuse(this.#failure(error));
      }
      if (typeof payload.exp === 'number') this.#verified?.set(token, payload);
    }
    const prefix = `${this.#resourceServer}/`;
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    const needed = `${prefix}${required.scope}`;
    if (!scopes.includes(needed)) return refuse(forbidden(this.#resourceServer, `the token lacks the scope ${needed}`, needed));
    const tenantId = payload[TENANT_CLAIM];
    if (typeof tenantId !== 'string' || tenantId === '') {
      return refuse(forbidden(this.#resourceServer, 'the token is not bound to a tenant'));
    }
    if (required.tenantId !== undefined && tenantId !== required.tenantId) {
      return refuse(forbidden(this.#resourceServer, 'the token is for another tenant'));
    }
    return {
      ok: true,
      caller: {
        clientId: payload.client_id as string,
        tenantId,
        scopes: scopes.filter((scope) => scope.startsWith(prefix)).map((scope) => scope.slice(prefix.length)),
      },
    };
  }

  /** A token verified before and not expired since. */
  #remembered(token: string): JwtPayload | undefined {
    const payload = this.#verified?.get(token);
    if (payload === undefined) return undefined;
    if ((payload.exp as number) * 1000 > this.#now()) return payload;
    this.#verified?.delete(token);
    return undefined;
  }

  #failure(error: unknown): AuthFailure {
    // The signing keys could not be fetched: not the caller's fault.
    if (error instanceof FetchError) {
      return { status: 503, code: 'auth_unavailable', message: 'tokens cannot be verified right now, retry later', headers: { 'retry-after': '5' } };
    }
    if (!(error instanceof JwtBaseError)) throw error;
    return unauthorized(this.#resourceServer, 'invalid', describe(error));
  }
}

/** The parts of a Bearer `Authorization` header (RFC 6750: the scheme is case-insensitive). */
export function bearerToken(header: string | undefined): { ok: true; token: string } | { ok: false; problem: 'missing' | 'malformed' } {
  if (header === undefined || header.trim() === '') return { ok: false, problem: 'missing' };
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  if (!match) return { ok: false, problem: 'malformed' };
  return { ok: true, token: match[1] as string };
}

function describe(error: JwtBaseError): string {
  if (error instanceof JwtExpiredError) return 'the token has expired';
  if (error instanceof JwtNotBeforeError) return 'the token is not valid yet';
  // An issuer the verifier has no configuration for is reported as a parameter error.
  if (error instanceof JwtInvalidIssuerError || error instanceof ParameterValidationError) return 'the token was not issued by this service';
  if (error instanceof CognitoJwtInvalidTokenUseError) return 'the token is not an access token';
  if (error instanceof MissingClientError) return 'the token names no client';
  if (
    error instanceof JwtInvalidSignatureError ||
    error instanceof JwtInvalidSignatureAlgorithmError ||
    error instanceof KidNotFoundInJwksError ||
    error instanceof WaitPeriodNotYetEndedJwkError
  ) {
    return 'the token signature is not valid';
  }
  if (error instanceof JwtParseError) return 'the token is malformed';
  return 'the token is not valid';
}

class MissingClientError extends JwtBaseError {}

/*
 * Every challenge names the API's resource server (the app's name) as its
 * realm, next to the scopes it qualifies, so a renamed fork says its own name.
 */
function unauthorized(realm: string, problem: 'missing' | 'malformed' | 'invalid', description?: string): AuthFailure {
  if (problem === 'missing') {
    // RFC 6750 §3.1: a request without credentials gets the bare challenge, no error code.
    return { status: 401, code: 'unauthorized', message: 'a bearer token is required', headers: { 'www-authenticate': `Bearer realm="${realm}"` } };
  }
  if (problem === 'malformed') {
    const message = 'the Authorization header must be "Bearer <token>"';
    return { status: 401, code: 'unauthorized', message, headers: { 'www-authenticate': challenge(realm, 'invalid_request', message) } };
  }
  const message = description ?? 'the token is not valid';
  return { status: 401, code: 'unauthorized', message, headers: { 'www-authenticate': challenge(realm, 'invalid_token', message) } };
}

function forbidden(realm: string, message: string, scope?: string): AuthFailure {
  return { status: 403, code: 'forbidden', message, headers: { 'www-authenticate': challenge(realm, 'insufficient_scope', message, scope) } };
}

function refuse(failure: AuthFailure): AuthResult {
  return { ok: false, ...failure };
}

function challenge(realm: string, error: string, description: string, scope?: string): string {
  return `Bearer realm="${realm}", error="${error}", error_description="${description}"${scope ? `, scope="${scope}"` : ''}`;
}

/**
 * Fetches the JWKS from an endpoint other than Cognito's (the local issuer,
 * plain HTTP on loopback): the library's own fetcher (timeouts, one retry),
 * given an HTTP agent when the endpoint is not HTTPS.
 */
class EndpointFetcher implements Fetcher {
  readonly #fetcher: SimpleFetcher;

  constructor(private readonly endpoint: string) {
    this.#fetcher = new SimpleFetcher(
      new URL(endpoint).protocol === 'http:' ? { defaultRequestOptions: { agent: new HttpAgent({ keepAlive: true }) } } : undefined,
    );
  }

  fetch(...[uri, requestOptions, data]: Parameters<Fetcher['fetch']>): Promise<ArrayBuffer> {
    return this.#fetcher.fetch(new URL(new URL(uri).pathname, this.endpoint).href, requestOptions, data);
  }
}
