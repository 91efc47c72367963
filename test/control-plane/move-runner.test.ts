import { type ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { executionMoveId, WorkflowMoveRunner } from '../../control-plane/move-runner.ts';

/** A Step Functions client that answers ListExecutions from pages, and records what it was asked. */
function listingClient(pages: Array<Array<{ name: string; status: string }>>) {
  const asked: Array<ListExecutionsCommand['input']> = [];
  // A real client, so that the SDK's paginator takes it; only its `send` is ours.
  const client = new SFNClient({ region: 'eu-west-1' });
  client.send = (async (command: ListExecutionsCommand) => {
    asked.push({ ...command.input });
    const page = command.input.nextToken === undefined ? 0 : Number(command.input.nextToken);
    return { executions: pages[page], ...(page + 1 < pages.length && { nextToken: String(page + 1) }) };
  }) as unknown as SFNClient['send'];
  return { client, asked };
}

describe('the move workflow runner', () => {
  it('names the move an execution runs, attempts and all', () => {
    expect(executionMoveId('20261207213152-f17d4e-1')).toBe('20261207213152-f17d4e');
    expect(executionMoveId('20261207213152-f17d4e-12')).toBe('20261207213152-f17d4e');
    expect(executionMoveId('no-attempt')).toBeUndefined();
    expect(executionMoveId(undefined)).toBeUndefined();
  });

  it('tells which moves a running execution runs, over every page, asking only for running ones', async () => {
    const { client, asked } = listingClient([
      [
        { name: 'move-a-1', status: 'RUNNING' },
        { name: 'move-b-2', status: 'RUNNING' },
      ],
      [{ name: 'move-c-1', status: 'RUNNING' }],
    ]);
    const running = await new WorkflowMoveRunner(client, 'arn:aws:states:eu-west-1:123456789012:stateMachine:moves').runningMoves();
    expect([...running].sort()).toEqual(['move-a', 'move-b', 'move-c']);
    expect(asked.map((input) => input.statusFilter)).toEqual(['RUNNING', 'RUNNING']);
  });
});
