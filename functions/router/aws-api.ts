import { HttpRequest } from '@smithy/core/transport';
import { Hash } from '@smithy/hash-node';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { isServerError, isThrottlingError, isTransientError } from '@smithy/service-error-classification';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SdkTimeouts } from '@item-master/shared/sdk-timeouts';

/** An answer of an AWS API that was not a success, or no answer at all. */
export class AwsApiError extends Error {
  constructor(
    /** The HTTP status; 0 when no answer came (connection refused or reset, timeout). */
    readonly status: number,
    /** The error's type as the API names it (`TooManyRequestsException`), or the Node.js error code. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AwsApiError';
  }

  /** Worth another attempt, by the SDK's own rules: no answer, throttled, or the service's own fault. */
  get retryable(): boolean {
    // The shape the SDK's classifiers read.
    const sdkError = { name: this.code, code: this.code, message: this.message, $metadata: this.status ? { httpStatusCode: this.status } : {} };
    return this.status === 0 || isThrottlingError(sdkError) || isTransientError(sdkError) || isServerError(sdkError);
  }
}

export interface AwsApiResponse {
  readonly status: number;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: string;
}

export interface AwsApiRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * One AWS service's HTTP API, signed with the SDK's own SigV4 signer and
 * sent over the SDK's own Node.js handler (keep-alive, connect and request
 * timeouts), without a client object: no middleware stack, no endpoint
 * rules, no serializers. For the few calls on the router's path, where the
 * SDK's clients cost more than the calls (docs/design/performance.md).
 *
 * As the SDK does: the region from `AWS_REGION`; the endpoint from
 * `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then the service's
 * regional endpoint; the credentials Lambda puts in the environment, read
 * at the first call. Attempts as `timeouts.maxAttempts` says, with full-jitter
 * backoff, for answers that are worth another.
 */
export class AwsApi {
  readonly endpoint: URL;
  readonly #signer: SignatureV4;
  readonly #http: NodeHttpHandler;
  readonly #maxAttempts: number;

  constructor(
    /** The signing name, also the endpoint's host prefix (`lambda`, `dynamodb`). */
    readonly service: string,
    timeouts: SdkTimeouts,
    env: Readonly<Record<string, string | undefined>> = process.env,
  ) {
    const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    if (!region) throw new Error('AWS_REGION is not set');
    this.endpoint = new URL(endpointOf(service, region, env));
    // Read once, as the SDK's environment provider does: Lambda sets them for the environment's life.
    let credentials: ReturnType<typeof credentialsOf> | undefined;
    this.#signer = new SignatureV4({
      service,
      region,
      sha256: Hash.bind(null, 'sha256'),
      credentials: async () => (credentials ??= credentialsOf(env)),
    });
    this.#http = new NodeHttpHandler({
      connectionTimeout: timeouts.connectMs,
      requestTimeout: timeouts.requestMs,
      throwOnRequestTimeout: true,
    });
    this.#maxAttempts = timeouts.maxAttempts;
  }

  /** POSTs `request`; resolves to a 2xx answer, rejects with an AwsApiError for anything else. */
  async post(request: AwsApiRequest): Promise<AwsApiResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(request);
      } catch (error) {
        if (!(error instanceof AwsApiError) || !error.retryable || attempt >= this.#maxAttempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 100 * 2 ** attempt));
      }
    }
  }

  async #once({ path, headers, body }: AwsApiRequest): Promise<AwsApiResponse> {
    const { endpoint } = this;
    const unsigned = new HttpRequest({
      method: 'POST',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      ...(endpoint.port && { port: Number(endpoint.port) }),
      path: `${endpoint.pathname.replace(/\/$/, '')}${path}`,
      headers: { ...headers, host: endpoint.host, 'content-length': String(Buffer.byteLength(body)) },
      body,
    });
    let answer: AwsApiResponse;
    try {
      const signed = (await this.#signer.sign(unsigned)) as HttpRequest;
      const { response } = await this.#http.handle(signed);
      answer = { status: response.statusCode, headers: response.headers, body: await readAll(response.body as AsyncIterable<Uint8Array>) };
    } catch (error) {
      const { code, name, message } = error as NodeJS.ErrnoException;
      throw new AwsApiError(0, code ?? name, `${this.service} did not answer: ${message}`);
    }
    if (answer.status >= 200 && answer.status < 300) return answer;
    const { code, message } = errorOf(answer);
    throw new AwsApiError(answer.status, code, `${this.service} answered ${answer.status} ${code}: ${message}`);
  }
}

function endpointOf(service: string, region: string, env: Readonly<Record<string, string | undefined>>): string {
  const own = env[`AWS_ENDPOINT_URL_${service.toUpperCase()}`] ?? env.AWS_ENDPOINT_URL;
  if (own) return own;
  return `https://${service}.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

function credentialsOf(env: Readonly<Record<string, string | undefined>>) {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken } = env;
  if (!accessKeyId || !secretAccessKey) throw new AwsApiError(0, 'CredentialsMissing', 'no AWS credentials in the environment');
  return { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) };
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** The error's type and message from an AWS JSON or REST-JSON error answer. */
function errorOf({ headers, body }: AwsApiResponse): { code: string; message: string } {
  let parsed: { __type?: unknown; message?: unknown; Message?: unknown } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // not JSON: the header (or the status) says what it was
  }
  const type = headers['x-amzn-errortype'] ?? (typeof parsed.__type === 'string' ? parsed.__type : 'UnknownError');
  const message = parsed.message ?? parsed.Message;
  // `com.amazonaws.dynamodb.v20120810#ThrottlingException` and `TooManyRequestsException:http://…` both name their type.
  const code = type.split(':')[0]!.split('#').pop()!;
  return { code, message: typeof message === 'string' ? message : body.slice(0, 200) };
}
