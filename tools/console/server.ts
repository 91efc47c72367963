/**
 * The console's web server: loopback only, one page and a small JSON API
 * over ConsoleModel. The page's script is bundled by esbuild when the server
 * starts, so it needs nothing from the network.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import * as z from 'zod';
import { ControlPlaneError, InvalidInputError, NotFoundError } from '../../control-plane/errors.ts';
import { shown } from '../../lib/cli-input.ts';
import { fromRoot } from '../../lib/paths.ts';
import type { ErrorBody } from './api.ts';
import { UnreachableError, type ConsoleModel } from './model.ts';

const MAX_BODY_BYTES = 16 * 1024;

const moveBody = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('tenant'), tenantId: z.string().min(1, 'name a tenant'), to: z.string().min(1, 'name a cell') }),
  z.object({
    kind: z.literal('bucket'),
    first: z.number().int().min(0),
    last: z.number().int().min(0),
    to: z.string().min(1, 'name a cell'),
  }),
]);

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ConsoleServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Bundles the page's script for the browser. */
export async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [fromRoot('tools/console/page/app.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

export async function startConsoleServer(model: ConsoleModel, options: { port?: number } = {}): Promise<ConsoleServer> {
  const script = await bundlePage();
  const html = readFileSync(fromRoot('tools/console/page/index.html'), 'utf8');
  let origin = '';
  const server = createServer((req, res) => {
    handle(model, req, res, { html, script, origin }).catch((error: unknown) => send(res, 500, { error: (error as Error).message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;
  return {
    url: origin,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(
  model: ConsoleModel,
  req: IncomingMessage,
  res: ServerResponse,
  page: { html: string; script: string; origin: string },
): Promise<void> {
  // Only this machine's browser, at this address: no other site's page may drive it (DNS rebinding, cross-site POSTs).
  const host = req.headers.host ?? '';
  if (!/^(127\.0\.0\.1|localhost):\d+$/.test(host)) return send(res, 403, { error: `the console answers only at ${page.origin}` });
  let url: URL;
  let parts: string[];
  try {
    url = new URL(req.url ?? '/', page.origin);
    parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return send(res, 400, { error: 'the request path is not a well-formed URL path (a bad percent-encoding?)' });
  }
  try {
    if (req.method === 'GET') {
      if (url.pathname === '/') return text(res, 200, 'text/html; charset=utf-8', page.html);
      if (url.pathname === '/app.js') return text(res, 200, 'text/javascript; charset=utf-8', page.script);
      if (url.pathname === '/api/state') return send(res, 200, await model.snapshot());
      if (parts[0] === 'api' && parts[1] === 'tenants' && parts.length === 3) return send(res, 200, await model.tenant(parts[2]!));
      if (parts[0] === 'api' && parts[1] === 'buckets' && parts.length === 3)
        return send(res, 200, await model.bucket(wholeNumber(parts[2]!, 'bucket')));
      if (parts[0] === 'api' && parts[1] === 'versions' && parts[3] === 'diff' && parts.length === 4)
        return send(res, 200, await model.versionDiff(wholeNumber(parts[2]!, 'version')));
      throw new HttpError(404, `nothing at ${url.pathname}`);
    }
    if (req.method === 'POST') {
      const from = req.headers.origin;
      if (from !== undefined && from !== page.origin && from !== page.origin.replace('127.0.0.1', 'localhost'))
        throw new HttpError(403, 'actions come from the console page only');
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(415, 'actions take application/json');
      const body = await readJson(req);
      if (parts[0] === 'api' && parts[1] === 'cells' && parts.length === 4 && (parts[3] === 'drain' || parts[3] === 'activate')) {
        return send(res, 200, await model.setStatus(parts[2]!, parts[3] === 'drain' ? 'draining' : 'active'));
      }
      if (url.pathname === '/api/plan') return send(res, 200, (await model.plan()).saved);
      if (url.pathname === '/api/apply') return send(res, 202, await model.apply());
      if (url.pathname === '/api/moves') {
        const parsed = moveBody.safeParse(body);
        if (!parsed.success)
          throw new HttpError(400, parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; '));
        if (parsed.data.kind === 'bucket' && parsed.data.last < parsed.data.first)
          throw new HttpError(400, 'a bucket range ends at or after its start');
        return send(res, 202, await model.startMove(parsed.data));
      }
      if (parts[0] === 'api' && parts[1] === 'moves' && parts[3] === 'abort' && parts.length === 4)
        return send(res, 202, await model.abortMove(parts[2]!));
      if (parts[0] === 'api' && parts[1] === 'moves' && parts[3] === 'revert' && parts.length === 4)
        return send(res, 202, await model.revertMove(parts[2]!));
      throw new HttpError(404, `no action at ${url.pathname}`);
    }
    throw new HttpError(405, 'GET or POST only');
  } catch (error) {
    if (error instanceof HttpError) return send(res, error.status, { error: error.message });
    if (error instanceof UnreachableError) return send(res, 503, { error: error.message });
    // The operations' refusals, in their own words: malformed input, something unknown, or a conflict with the current state.
    if (error instanceof InvalidInputError) return send(res, 400, { error: error.message });
    if (error instanceof NotFoundError) return send(res, 404, { error: error.message });
    if (error instanceof ControlPlaneError) return send(res, 409, { error: error.message });
    return send(res, 500, { error: (error as Error).message });
  }
}

function wholeNumber(text: string, what: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new HttpError(400, `a ${what} is a whole number, not ${shown(text)}`);
  return Number(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `an action's body is at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown | ErrorBody): void {
  text(res, status, 'application/json', JSON.stringify(body));
}

function text(res: ServerResponse, status: number, type: string, body: string): void {
  res
    .writeHead(status, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Everything comes from the console itself: no CDN, no inline script.
      'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    })
    .end(body);
}
