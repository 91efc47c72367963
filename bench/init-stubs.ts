/**
 * Loopback stand-ins for the services functions read during init (the
 * router: the control plane's table and the user pool's JWKS), so that a
 * cold start is measured with the I/O it really does, answered at loopback
 * speed: not with connection failures (which cost retries and warnings),
 * nor with DynamoDB Local's own latency.
 *
 * Each stub is a recording proxy in front of the local runtime's service:
 * the first time it sees a request (method, path, `x-amz-target`, body) it
 * forwards it and keeps the answer; from then on it answers from memory.
 * Signatures and dates are not part of the key, so every fresh process's
 * identical read is answered the same.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { close, listen, readBody } from '../local/http.ts';

interface Recorded {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export interface InitStub {
  readonly url: string;
  /** Requests answered from memory, and forwarded. */
  readonly counts: () => { readonly replayed: number; readonly forwarded: number };
  readonly close: () => Promise<void>;
}

/** Headers a replayed answer may carry (not hop-by-hop, not the upstream's own framing). */
const KEPT_HEADERS = ['content-type', 'x-amzn-errortype', 'x-amz-function-error', 'x-amz-crc32'];

export async function startRecordingProxy(upstream: string): Promise<InitStub> {
  const recorded = new Map<string, Promise<Recorded>>();
  let replayed = 0;
  let forwarded = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const body = (await readBody(req, 6 * 1024 * 1024)) ?? Buffer.alloc(0);
      const key = JSON.stringify([req.method, req.url, req.headers['x-amz-target'] ?? '', body.toString('base64')]);
      let answer = recorded.get(key);
      if (answer) replayed += 1;
      else {
        forwarded += 1;
        answer = forward(upstream, req.method ?? 'GET', req.url ?? '/', req.headers, body);
        recorded.set(key, answer);
        // A failed forward is not kept: the next request tries again.
        answer.catch(() => recorded.delete(key));
      }
      const { status, headers, body: payload } = await answer;
      res.writeHead(status, { ...headers, 'content-length': String(payload.length) }).end(payload);
    })().catch((error: unknown) => {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`bench stub: ${(error as Error).message}`);
    });
  });
  await listen(server, 0);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts: () => ({ replayed, forwarded }),
    close: () => close(server),
  };
}

async function forward(upstream: string, method: string, url: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Recorded> {
  const passed = Object.fromEntries(
    Object.entries(headers).filter(([name, value]) => typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name)),
  ) as Record<string, string>;
  const response = await fetch(new URL(url, upstream), { method, headers: passed, ...(body.length > 0 && { body }) });
  const kept = Object.fromEntries(KEPT_HEADERS.flatMap((name) => (response.headers.has(name) ? [[name, response.headers.get(name) as string]] : [])));
  return { status: response.status, headers: kept, body: Buffer.from(await response.arrayBuffer()) };
}

/**
 * A function's environment with the services it may read at init pointed at
 * `stubs` (by the SDK's per-service endpoint variables), the rest as given.
 */
export function withInitStubs(
  env: Record<string, string>,
  stubs: { readonly dynamodb: InitStub; readonly cognito?: InitStub },
): Record<string, string> {
  return {
    ...env,
    AWS_ENDPOINT_URL_DYNAMODB: stubs.dynamodb.url,
    ...(stubs.cognito &&
      env.AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER !== undefined && { AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: stubs.cognito.url }),
  };
}
