import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface LocalMessage {
  readonly messageId: string;
  readonly body: string;
  readonly sentAt: string;
}

/** Messages kept per queue: enough to follow a local session, bounded so a long run stays small. */
const KEPT_PER_QUEUE = 1000;

/**
 * The app's SQS queues, locally: what the workflows send is kept (the
 * newest 1,000 per queue) so it can be read, never delivered anywhere.
 */
export class LocalQueues {
  private readonly queues = new Map<string, LocalMessage[]>();

  /** Declares the queues the app has (sending to any other is an error, as on AWS). */
  define(queueNames: readonly string[]): void {
    for (const name of queueNames) if (!this.queues.has(name)) this.queues.set(name, []);
  }

  /** Sends to a queue given by URL, ARN or name; answers as SQS SendMessage does. */
  send(queue: string, body: string): { MessageId: string; MD5OfMessageBody: string } {
    const name = queueNameOf(queue);
    const messages = this.queues.get(name);
    if (!messages) throw Object.assign(new Error(`The specified queue does not exist: ${name}`), { name: 'QueueDoesNotExist' });
    const message = { messageId: randomUUID(), body, sentAt: new Date().toISOString() };
    messages.push(message);
    if (messages.length > KEPT_PER_QUEUE) messages.shift();
    return { MessageId: message.messageId, MD5OfMessageBody: createHash('md5').update(body).digest('hex') };
  }

  names(): string[] {
    return [...this.queues.keys()];
  }

  /** The messages of a queue, oldest first; undefined for an unknown queue. */
  messages(queue: string): LocalMessage[] | undefined {
    return this.queues.get(queueNameOf(queue))?.slice();
  }
}

/** `https://sqs.<region>.amazonaws.com/<account>/<name>`, `arn:aws:sqs:<region>:<account>:<name>` or `<name>` → `<name>`. */
export function queueNameOf(queue: string): string {
  if (queue.startsWith('arn:')) return queue.split(':').at(-1) as string;
  return queue.split('/').at(-1) as string;
}

const QUEUES_PATH = '/_local/queues';

/**
 * `GET /_local/queues` (each queue, its message count and where to read it)
 * and `GET /_local/queues/<name>` (its messages, oldest first, bodies parsed
 * when they are JSON). Answers true when the request was one of these.
 */
export function serveQueues(queues: LocalQueues, req: IncomingMessage, res: ServerResponse): boolean {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost');
  if (pathname !== QUEUES_PATH && !pathname.startsWith(`${QUEUES_PATH}/`)) return false;
  const reply = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(`${JSON.stringify(body, null, 2)}\n`);
  if (req.method !== 'GET') {
    reply(405, { error: { code: 'method_not_allowed', message: 'local queues are read with GET' } }, { allow: 'GET' });
    return true;
  }
  if (pathname === QUEUES_PATH) {
    const list = queues.names().map((name) => ({ name, messages: queues.messages(name)!.length, url: `${QUEUES_PATH}/${name}` }));
    reply(200, { queues: list });
    return true;
  }
  const name = decodeURIComponent(pathname.slice(QUEUES_PATH.length + 1));
  const messages = queues.messages(name);
  if (!messages) {
    reply(404, { error: { code: 'not_found', message: `no local queue ${name}; GET ${QUEUES_PATH} lists them` } });
    return true;
  }
  reply(200, { queue: name, messages: messages.map((m) => ({ ...m, body: parseIfJson(m.body) })) });
  return true;
}

function parseIfJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
