import type { LocalAssembly, LocalFunction } from './assembly.ts';
import { resolveValue } from './template-values.ts';

export interface Endpoints {
  readonly dynamodb: string;
  readonly lambda: string;
  /** The local issuer standing in for Cognito (its JWKS), when the app has a user pool. */
  readonly cognitoIdentityProvider?: string;
  /** The local Step Functions API. */
  readonly stepFunctions?: string;
  /**
   * Where the local WebSocket APIs answer: their `https://<api-id>.execute-api.<region>.amazonaws.com`
   * URLs (callback URLs for the management API) are rewritten to it.
   */
  readonly executeApi?: string;
}

/**
 * Local credentials (the SDK needs some; nothing checks them), no shared
 * config or credentials file, and every service without a local endpoint
 * sent to a closed loopback port: a function can never reach AWS or read the
 * user's real credentials.
 */
const LOCAL_AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_SESSION_TOKEN: 'local',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
};

/**
 * A function's whole environment, as Lambda would give it: the template's
 * variables with their tokens resolved to local names, Lambda's own
 * variables, and the AWS SDK pointed at local endpoints only.
 */
export function functionEnvironment(fn: LocalFunction, assembly: LocalAssembly, endpoints: Endpoints): Record<string, string> {
  const resolved = Object.fromEntries(
    Object.entries(fn.environment).map(([name, value]) => [name, localUrl(resolve(value, fn, assembly, name), assembly, endpoints)]),
  );
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TZ: 'UTC',
    LANG: 'en_US.UTF-8',
    AWS_REGION: assembly.region,
    AWS_DEFAULT_REGION: assembly.region,
    AWS_LAMBDA_FUNCTION_NAME: fn.functionName,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    ...LOCAL_AWS_ENV,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_LAMBDA: endpoints.lambda,
    ...(endpoints.cognitoIdentityProvider && { AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: endpoints.cognitoIdentityProvider }),
    ...(endpoints.stepFunctions && { AWS_ENDPOINT_URL_SFN: endpoints.stepFunctions }),
    // No X-Ray daemon locally.
    POWERTOOLS_TRACE_ENABLED: 'false',
    ...resolved,
  };
}

/** An execute-api URL of one of the app's WebSocket APIs, pointed at the local endpoint that serves it. */
function localUrl(value: string, assembly: LocalAssembly, endpoints: Endpoints): string {
  if (!endpoints.executeApi) return value;
  for (const api of assembly.webSocketApis) {
    const origin = `https://${api.apiId}.execute-api.${assembly.region}.amazonaws.com`;
    if (value === origin || value.startsWith(`${origin}/`)) return `${endpoints.executeApi}${value.slice(origin.length)}`;
  }
  return value;
}

function resolve(value: unknown, fn: LocalFunction, assembly: LocalAssembly, name: string): string {
  try {
    return resolveValue(value, fn.stackName, assembly);
  } catch (error) {
    throw new Error(`${fn.functionName}: ${name}: ${(error as Error).message}`);
  }
}
