import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { AwsApi } from '../../functions/router/aws-api.ts';
import { ControlPlaneReads } from '../../functions/router/control-plane-reads.ts';
import { CONTROL_PLANE_READ, type SdkTimeouts } from '../../layers/shared/src/sdk-timeouts.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb-local.ts';

/** The environment Lambda would give the router, with one service's endpoint on loopback. */
export function awsEnv(service: string, endpoint: string): Record<string, string> {
  return {
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: 'session-token',
    [`AWS_ENDPOINT_URL_${service.toUpperCase()}`]: endpoint,
  };
}

/** The router's reads of a control-plane table at `endpoint` (DynamoDB Local, or a stub). */
export function routerReads(endpoint: string, tableName: string, timeouts: SdkTimeouts = CONTROL_PLANE_READ): ControlPlaneReads {
  return new ControlPlaneReads(new AwsApi('dynamodb', timeouts, awsEnv('dynamodb', endpoint)), tableName);
}

export interface StubRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export type StubAnswer = { status: number; headers?: Record<string, string>; body?: string } | 'hang' | 'reset';

/** An AWS API on loopback that answers each request as `answer` says, and records what it was sent. */
export async function startStubApi(answer: (request: StubRequest) => StubAnswer) {
  const requests: StubRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
    requests.push(request);
    const reply = answer(request);
    if (reply === 'hang') return;
    if (reply === 'reset') return req.socket.destroy();
    res.writeHead(reply.status, reply.headers).end(reply.body ?? '');
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
