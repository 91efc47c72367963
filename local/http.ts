import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/**
 * Small helpers shared by the local HTTP servers (front door, Lambda API,
 * Step Functions API, WebSocket management API, issuer); all bind 127.0.0.1.
 */

/**
 * The request body, or undefined as soon as it is known to be over `limit`
 * bytes: from its Content-Length before anything is read, or from the bytes
 * read so far. Nothing past the limit is kept, and the caller's answer
 * closes the connection (see `refuseBody`), so a huge upload costs nothing.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit) return resolve(undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      chunks.length = 0;
      resolve(undefined);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Answers a body over the limit and drops the connection, so that the rest of the upload is never read. */
export function refuseBody(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.shouldKeepAlive = false;
  res.writeHead(status, { ...headers, connection: 'close' }).end(body, () => res.req.destroy());
}

export function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
