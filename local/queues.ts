import { createHash, randomUUID } from 'node:crypto';

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
