import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { APIGatewayAuthorizerResult } from 'aws-lambda';
import { WebSocketServer, type WebSocket } from 'ws';
import type { LocalWebSocketApi, LocalWebSocketRoute } from './assembly.ts';
import { FunctionError, type FunctionHost } from './function-host.ts';
import { close, listen, readBody, refuseBody } from './http.ts';
import { LOCAL_ACCOUNT } from './template-values.ts';

/** API Gateway's WebSocket quotas that clients notice. */
export const WEBSOCKET_LIMITS = {
  /** A frame from a client, or a post to `@connections`: larger closes the connection (1009) or is refused (413). */
  maxMessageBytes: 128 * 1024,
  /** A connection that sends nothing for this long is closed (1001, "Going away"). */
  idleTimeoutMs: 10 * 60 * 1000,
  /** No connection lasts longer, however busy (1001, "Going away"). */
  maxConnectionMs: 2 * 60 * 60 * 1000,
} as const;

const MESSAGE_TOO_BIG = 'Message too big';

/** Starts a timer that can be restarted from zero and cancelled. */
export type StartTimer = (ms: number, onExpiry: () => void) => { restart(): void; cancel(): void };

const nodeTimer: StartTimer = (ms, onExpiry) => {
  const timer = setTimeout(onExpiry, ms);
  // A connection's limits never keep the process alive.
  timer.unref();
  return { restart: () => timer.refresh(), cancel: () => clearTimeout(timer) };
};

export interface WebSocketApiOptions {
  readonly host: Pick<FunctionHost, 'invoke'>;
  readonly api: LocalWebSocketApi;
  readonly region: string;
  /** Port on 127.0.0.1; 0 picks a free one. */
  readonly port: number;
  /** One line per connection opened, refused or closed. @default silent */
  readonly log?: (line: string) => void;
  /** The idle and connection limits' timers. @default Node's timers */
  readonly startTimer?: StartTimer;
}

export interface LocalWebSocketEndpoint {
  /** Where clients connect: `ws://127.0.0.1:<port>/<stage>` (the bare origin works too). */
  readonly url: string;
  /** The management API's base (`callbackUrl`): `POST|GET|DELETE <callbackUrl>/@connections/<id>`. */
  readonly callbackUrl: string;
  /** Where the API's `https://<api-id>.execute-api...` URLs point locally. */
  readonly origin: string;
  /** Ids of the open connections. */
  connectionIds(): string[];
  close(): Promise<void>;
}

interface Connection {
  readonly id: string;
  readonly socket: WebSocket;
  readonly connectedAt: Date;
  lastActiveAt: Date;
  readonly sourceIp: string;
  readonly userAgent: string;
  readonly authorizer: Record<string, unknown>;
  closing?: { statusCode: number; reason: string };
}

/**
 * An API Gateway WebSocket API, locally: the `$connect` REQUEST authorizer
 * and route decide whether the upgrade succeeds, each frame is routed by the
 * API's selection expression (`$request.body.<field>`, else `$default`) to
 * its route's function, whose `body` goes back to the client when the route
 * has a route response, and a closed connection invokes `$disconnect`. The
 * same port serves the management API (`@connections`) that the AWS SDK's
 * `ApiGatewayManagementApiClient` posts to, with 410 for gone connections.
 */
export async function startWebSocketApi(options: WebSocketApiOptions): Promise<LocalWebSocketEndpoint> {
  const { api, host } = options;
  const log = options.log ?? (() => undefined);
  const connections = new Map<string, Connection>();
  let stopping = false;
  const route = (key: string) => api.routes.find((r) => r.routeKey === key);
  const selectionField = /^\$request\.body\.([A-Za-z0-9_]+)$/.exec(api.routeSelectionExpression)?.[1];
  if (!selectionField) throw new Error(`${api.logicalId}: the local runtime supports route selection by $request.body.<field> only`);
  const startTimer = options.startTimer ?? nodeTimer;
  // The limit is enforced on each message, with a close handshake the client sees as 1009; ws's own cap, which
  // drops the socket abruptly (the client may see 1006), only guards memory against frames far past it.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * WEBSOCKET_LIMITS.maxMessageBytes });

  const server = createServer((req, res) => {
    manage(req, res).catch((error: unknown) => sendError(res, 500, 'InternalServerErrorException', (error as Error).message));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrade(req, socket, head).catch((error: unknown) => {
      log(`$connect failed: ${(error as Error).message}`);
      refuse(socket, 500);
    });
  });
  await listen(server, options.port);
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  const baseContext = (
    connectionId: string,
    routeKey: string,
    eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT',
    connection?: Omit<Connection, 'socket'>,
  ) => {
    const now = new Date();
    return {
      routeKey,
      eventType,
      messageDirection: 'IN',
      extendedRequestId: randomUUID(),
      requestTime: now.toUTCString(),
      requestTimeEpoch: now.getTime(),
      requestId: randomUUID(),
      stage: api.stageName,
      domainName: `127.0.0.1:${port}`,
      apiId: api.apiId,
      connectionId,
      connectedAt: (connection?.connectedAt ?? now).getTime(),
      identity: { sourceIp: connection?.sourceIp ?? '127.0.0.1', userAgent: connection?.userAgent ?? '' },
      ...(connection && { authorizer: connection.authorizer }),
    };
  };

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname !== '/' && url.pathname !== `/${api.stageName}`) return refuse(socket, 404);
    const connectionId = randomBytes(12).toString('base64');
    const query = Object.fromEntries(url.searchParams);
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
    const request = { headers, queryStringParameters: Object.keys(query).length ? query : undefined };
    const connect = route('$connect');
    let authorizer: Record<string, unknown> = {};
    if (connect?.authorizer) {
      const decision = await authorize(connect, connectionId, request, req);
      if (typeof decision === 'number') return refuse(socket, decision);
      authorizer = decision;
    }
    const connection: Omit<Connection, 'socket'> = {
      id: connectionId,
      connectedAt: new Date(),
      lastActiveAt: new Date(),
      sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
      userAgent: headers['user-agent'] ?? '',
      authorizer,
    };
    if (connect) {
      const event = { ...request, requestContext: baseContext(connectionId, '$connect', 'CONNECT', connection), isBase64Encoded: false };
      const status = await invokeStatus(connect.functionName, event);
      if (status < 200 || status > 299) return refuse(socket, status);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const open: Connection = { ...connection, socket: ws };
      connections.set(connectionId, open);
      log(`connected ${connectionId}`);
      const idle = startTimer(WEBSOCKET_LIMITS.idleTimeoutMs, () => closeConnection(open, 1001, 'Going away'));
      const lifetime = startTimer(WEBSOCKET_LIMITS.maxConnectionMs, () => closeConnection(open, 1001, 'Going away'));
      ws.on('message', (data, isBinary) => {
        open.lastActiveAt = new Date();
        idle.restart();
        if ((data as Buffer).length > WEBSOCKET_LIMITS.maxMessageBytes) return closeConnection(open, 1009, MESSAGE_TOO_BIG);
        void message(open, isBinary ? Buffer.from(data as Buffer).toString('base64') : data.toString(), isBinary);
      });
      ws.on('close', (code, reason) => {
        idle.cancel();
        lifetime.cancel();
        connections.delete(connectionId);
        if (!stopping) void disconnect(open, open.closing ?? { statusCode: code, reason: reason.toString() });
      });
      ws.on('error', (error: Error & { code?: string }) => {
        if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') open.closing ??= { statusCode: 1009, reason: MESSAGE_TOO_BIG };
      });
    });
  }

  /** The authorizer's context, or the status API Gateway answers the upgrade with. */
  async function authorize(
    connect: LocalWebSocketRoute,
    connectionId: string,
    request: { headers: Record<string, string>; queryStringParameters?: Record<string, string> },
    req: IncomingMessage,
  ): Promise<Record<string, unknown> | number> {
    const { functionName, identitySource } = connect.authorizer!;
    // A missing identity source is refused before the authorizer runs.
    for (const source of identitySource) {
      const [, where, name] = /^route\.request\.(querystring|header)\.(.+)$/.exec(source) ?? [];
      const value = where === 'querystring' ? request.queryStringParameters?.[name as string] : request.headers[(name ?? '').toLowerCase()];
      if (where && !value) return 401;
    }
    const event = {
      type: 'REQUEST',
      methodArn: `arn:aws:execute-api:${options.region}:${LOCAL_ACCOUNT}:${api.apiId}/${api.stageName}/$connect`,
      ...request,
      stageVariables: {},
      requestContext: {
        ...baseContext(connectionId, '$connect', 'CONNECT'),
        identity: { sourceIp: req.socket.remoteAddress ?? '127.0.0.1', userAgent: request.headers['user-agent'] ?? '' },
      },
    };
    let result: APIGatewayAuthorizerResult;
    try {
      result = (await host.invoke(functionName, event)) as APIGatewayAuthorizerResult;
    } catch (error) {
      return error instanceof FunctionError && error.error.errorMessage === 'Unauthorized' ? 401 : 500;
    }
    const allowed = result?.policyDocument?.Statement?.some((s) => s.Effect === 'Allow');
    const denied = result?.policyDocument?.Statement?.some((s) => s.Effect === 'Deny');
    if (!allowed || denied) return 403;
    return { ...(result.context ?? {}), principalId: result.principalId };
  }

  async function message(connection: Connection, body: string, isBinary: boolean): Promise<void> {
    let routeKey = '$default';
    try {
      const selected = (JSON.parse(body) as Record<string, unknown> | null)?.[selectionField as string];
      if (typeof selected === 'string' && route(selected) && !selected.startsWith('$')) routeKey = selected;
    } catch {
      // not JSON: $default
    }
    const target = route(routeKey);
    if (!target) return send(connection, JSON.stringify({ message: 'Forbidden', connectionId: connection.id, requestId: randomUUID() }));
    const event = {
      requestContext: { ...baseContext(connection.id, routeKey, 'MESSAGE', connection), messageId: randomBytes(8).toString('base64') },
      body,
      isBase64Encoded: isBinary,
    };
    try {
      const result = (await host.invoke(target.functionName, event)) as { body?: unknown } | undefined;
      if (target.returnsResponse && typeof result?.body === 'string') send(connection, result.body);
    } catch {
      send(connection, JSON.stringify({ message: 'Internal server error', connectionId: connection.id, requestId: event.requestContext.requestId }));
    }
  }

  async function disconnect(connection: Connection, closing: { statusCode: number; reason: string }): Promise<void> {
    log(`disconnected ${connection.id} (${closing.statusCode})`);
    const target = route('$disconnect');
    if (!target) return;
    const event = {
      headers: {},
      requestContext: {
        ...baseContext(connection.id, '$disconnect', 'DISCONNECT', connection),
        disconnectStatusCode: closing.statusCode,
        disconnectReason: closing.reason,
      },
      isBase64Encoded: false,
    };
    await host
      .invoke(target.functionName, event)
      .catch((error: unknown) => log(`$disconnect of ${connection.id} failed: ${(error as Error).message}`));
  }

  async function invokeStatus(functionName: string, event: unknown): Promise<number> {
    try {
      const result = (await host.invoke(functionName, event)) as { statusCode?: unknown } | undefined;
      return typeof result?.statusCode === 'number' ? result.statusCode : 200;
    } catch {
      return 500;
    }
  }

  function send(connection: Connection, data: string): void {
    if (connection.socket.readyState === connection.socket.OPEN) connection.socket.send(data);
  }

  function closeConnection(connection: Connection, code: number, reason: string): void {
    connection.closing = { statusCode: code, reason };
    connection.socket.close(code, reason);
  }

  /** The management API: `<stage>/@connections/<id>`. */
  async function manage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = /^\/([^/]+)\/@connections\/([^/]+)$/.exec(new URL(req.url ?? '/', origin).pathname);
    if (!match || match[1] !== api.stageName) return sendError(res, 404, 'NotFoundException', 'not a management API path');
    const connection = connections.get(decodeURIComponent(match[2] as string));
    const body = await readBody(req, WEBSOCKET_LIMITS.maxMessageBytes);
    if (!body) {
      const headers = { 'content-type': 'application/json', 'x-amzn-errortype': 'PayloadTooLargeException' };
      return refuseBody(res, 413, headers, JSON.stringify({ message: 'Message too long' }));
    }
    if (!connection || connection.socket.readyState !== connection.socket.OPEN) return sendError(res, 410, 'GoneException', null);
    if (req.method === 'POST') {
      connection.socket.send(body.toString('utf8'));
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          connectedAt: connection.connectedAt.toISOString(),
          lastActiveAt: connection.lastActiveAt.toISOString(),
          identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
        }),
      );
      return;
    }
    if (req.method === 'DELETE') {
      closeConnection(connection, 1000, 'Deleted by the management API');
      res.writeHead(204).end();
      return;
    }
    sendError(res, 405, 'MethodNotAllowedException', `${req.method} is not a management API method`);
  }

  return {
    url: `ws://127.0.0.1:${port}/${api.stageName}`,
    callbackUrl: `${origin}/${api.stageName}`,
    origin,
    connectionIds: () => [...connections.keys()],
    async close() {
      stopping = true;
      for (const connection of connections.values()) connection.socket.terminate();
      wss.close();
      await close(server);
    },
  };
}

function refuse(socket: Duplex, status: number): void {
  const reason = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[status] ?? 'Internal Server Error';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function sendError(res: ServerResponse, status: number, type: string, message: string | null): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type }).end(JSON.stringify({ message }));
}
