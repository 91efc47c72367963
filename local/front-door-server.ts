import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { FunctionThrottledError, FunctionTimeoutError, type FunctionHost } from './function-host.ts';
import { close, listen, readBody, refuseBody } from './http.ts';
import type { AnsweredRequest } from './output-lines.ts';

/** Largest request body an ALB passes to a Lambda target. */
const MAX_LAMBDA_REQUEST_BYTES = 1024 * 1024;
/** Largest response an ALB accepts from a Lambda target. */
const MAX_LAMBDA_RESPONSE_BYTES = 1024 * 1024;

const TEXT_TYPES = /^(text\/|application\/(json|javascript|xml|x-www-form-urlencoded)|[^;]*\+(json|xml))/i;

export interface FrontDoorOptions {
  readonly host: FunctionHost;
  readonly functionName: string;
  readonly multiValueHeaders: boolean;
  readonly port: number;
  /**
   * The local runtime's own routes (under `/_local/`), tried before the
   * request goes to the target; answers true when it served the request.
   * @default none
   */
  readonly localRoutes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Told of every answer to a request for the target: its method, path,
   * status, time taken and the `x-cell-id` it carries, if any.
   * @default none
   */
  readonly onAnswer?: (answer: AnsweredRequest) => void;
}

/**
 * The ALB, locally: each HTTP request becomes the event the ALB sends its
 * Lambda target, and the target's answer becomes the HTTP response. Like the
 * ALB, a malformed answer is a 502 and a target past its timeout a 504.
 */
export async function startFrontDoor(options: FrontDoorOptions): Promise<{ url: string; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    serve(options, req, res).catch(() => {
      if (!res.headersSent) albError(res, 502);
    });
  });
  await listen(server, options.port);
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, port, close: () => close(server) };
}

async function serve(options: FrontDoorOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (options.localRoutes?.(req, res)) return;
  // The cell is known from the target's answer; the ALB's own errors have none.
  let cellId: string | undefined;
  const started = performance.now();
  res.once('finish', () =>
    options.onAnswer?.({
      method: req.method ?? 'GET',
      path: new URL(req.url ?? '/', 'http://localhost').pathname,
      statusCode: res.statusCode,
      ms: performance.now() - started,
      ...(cellId && { cellId }),
    }),
  );
  // Refused as soon as it is known to be too large, token or not, as the ALB does.
  const body = await readBody(req, MAX_LAMBDA_REQUEST_BYTES);
  if (!body) return refuseBody(res, 413, { 'content-type': 'text/html' }, albPage(413));
  const event = toAlbEvent(req, body, options.multiValueHeaders);
  let result: unknown;
  try {
    result = await options.host.invoke(options.functionName, event);
  } catch (error) {
    return albError(res, error instanceof FunctionTimeoutError ? 504 : error instanceof FunctionThrottledError ? 503 : 502);
  }
  const response = validResponse(result);
  if (!response) return albError(res, 502);
  const payload = response.body ? Buffer.from(response.body, response.isBase64Encoded ? 'base64' : 'utf8') : Buffer.alloc(0);
  if (payload.length > MAX_LAMBDA_RESPONSE_BYTES) return albError(res, 502);
  const headers: Record<string, string | string[]> = options.multiValueHeaders
    ? Object.fromEntries(Object.entries(response.multiValueHeaders ?? {}).map(([k, v]) => [k, v.map(String)]))
    : Object.fromEntries(Object.entries(response.headers ?? {}).map(([k, v]) => [k, String(v)]));
  const cell = Object.entries(headers).find(([name]) => name.toLowerCase() === 'x-cell-id')?.[1];
  cellId = Array.isArray(cell) ? cell[0] : cell;
  res.writeHead(response.statusCode, headers).end(req.method === 'HEAD' ? undefined : payload);
}

export function toAlbEvent(req: IncomingMessage, body: Buffer, multiValue: boolean): ALBEvent {
  const url = new URL(req.url ?? '/', 'http://localhost');
  // The ALB passes query strings as they came, still URL-encoded.
  const pairs = url.search
    .slice(1)
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf('=');
      return at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
    }) as Array<[string, string]>;
  const headerPairs: Array<[string, string]> = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headerPairs.push([(req.rawHeaders[i] as string).toLowerCase(), req.rawHeaders[i + 1] as string]);
  }
  headerPairs.push(['x-forwarded-for', req.socket.remoteAddress ?? '127.0.0.1'], ['x-forwarded-proto', 'http']);
  if (!headerPairs.some(([name]) => name === 'x-amzn-trace-id')) {
    headerPairs.push(['x-amzn-trace-id', `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomHex(24)}`]);
  }
  const contentType = req.headers['content-type'] ?? '';
  const isText = body.length === 0 || TEXT_TYPES.test(contentType);
  const common = {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:local:000000000000:targetgroup/local/0' } },
    httpMethod: req.method ?? 'GET',
    path: url.pathname,
    body: isText ? body.toString('utf8') : body.toString('base64'),
    isBase64Encoded: !isText,
  };
  if (multiValue) {
    return { ...common, multiValueQueryStringParameters: group(pairs), multiValueHeaders: group(headerPairs) };
  }
  // Single-value mode: the last value of a repeated name wins, as on the ALB.
  return { ...common, queryStringParameters: Object.fromEntries(pairs), headers: Object.fromEntries(headerPairs) };
}

function group(pairs: Array<[string, string]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of pairs) (out[name] ??= []).push(value);
  return out;
}

function randomHex(length: number): string {
  return Array.from({ length }, () => Math.floor(Math.random() * 16).toString(16)).join('');
}

/** The checks the ALB makes on a Lambda target's answer. */
function validResponse(result: unknown): ALBResult | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const r = result as ALBResult;
  if (!Number.isInteger(r.statusCode) || r.statusCode < 100 || r.statusCode > 599) return undefined;
  if (r.body !== undefined && r.body !== null && typeof r.body !== 'string') return undefined;
  if (r.headers && Object.values(r.headers).some((v) => typeof v !== 'string')) return undefined;
  return r;
}

function albError(res: ServerResponse, status: 502 | 503 | 504): void {
  res.writeHead(status, { 'content-type': 'text/html' }).end(albPage(status));
}

function albPage(status: 413 | 502 | 503 | 504): string {
  const text = { 413: 'Request Entity Too Large', 502: 'Bad Gateway', 503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out' }[status];
  return `<html><body><h1>${status} ${text}</h1></body></html>\n`;
}
