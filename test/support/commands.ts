import type { ServiceOutputTypes } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** A command a client sent: its name, as the low-level client names it (`GetItemCommand`, `QueryCommand`, ...), and its input. */
export interface SentCommand {
  readonly name: string;
  readonly input: Record<string, unknown>;
}

/** An output to answer in the table's place, an error to throw instead, or undefined to let the command through. */
export type Answer = (command: SentCommand) => Record<string, unknown> | Error | undefined;

let recorders = 0;

/**
 * Records every command `doc` sends from now until `stop`, in order; `answer`
 * may answer one in the table's place. Middleware, so the code under test
 * keeps its own client.
 */
export function recordCommands(doc: DynamoDBDocumentClient, answer: Answer = () => undefined): { sent: SentCommand[]; stop: () => void } {
  const sent: SentCommand[] = [];
  const name = `recordCommands-${++recorders}`;
  doc.middlewareStack.add(
    (next, context) => async (args) => {
      const command = { name: String(context.commandName), input: args.input as Record<string, unknown> };
      sent.push(command);
      const answered = answer(command);
      if (answered instanceof Error) throw answered;
      return answered === undefined ? next(args) : { output: { $metadata: {}, ...answered } as ServiceOutputTypes, response: {} };
    },
    { step: 'initialize', name },
  );
  return { sent, stop: () => doc.middlewareStack.remove(name) };
}
