import { ListExecutionsCommand, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { MoveRunner } from './apply.ts';
import type { MoveRecord } from './move-record.ts';

/**
 * Runs moves in the control plane's move workflow. An execution is named
 * after its move and attempt (`<moveId>-<n>`): starting a move whose
 * execution is running does nothing, and two operators resuming the same
 * move at once start the same name, which Step Functions starts once.
 */
export class WorkflowMoveRunner implements MoveRunner {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  async start(move: MoveRecord): Promise<void> {
    const executions = await this.executionsOf(move.moveId);
    if (executions.some((e) => e.status === 'RUNNING')) return;
    await this.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: this.stateMachineArn,
        name: `${move.moveId}-${executions.length + 1}`,
        input: JSON.stringify({ moveId: move.moveId }),
      }),
    );
  }

  /** The moves whose workflow is running now: a move not among them, and not finished, waits for someone to start it again. */
  async runningMoves(): Promise<Set<string>> {
    const running = new Set<string>();
    let nextToken: string | undefined;
    do {
      const page = await this.sfn.send(
        new ListExecutionsCommand({ stateMachineArn: this.stateMachineArn, statusFilter: 'RUNNING', maxResults: 1_000, nextToken }),
      );
      for (const e of page.executions ?? []) {
        const moveId = executionMoveId(e.name);
        if (moveId) running.add(moveId);
      }
      nextToken = page.nextToken;
    } while (nextToken);
    return running;
  }

  private async executionsOf(moveId: string): Promise<Array<{ name: string; status: string }>> {
    const found: Array<{ name: string; status: string }> = [];
    let nextToken: string | undefined;
    do {
      const page = await this.sfn.send(new ListExecutionsCommand({ stateMachineArn: this.stateMachineArn, maxResults: 1_000, nextToken }));
      for (const e of page.executions ?? []) {
        if (e.name?.startsWith(`${moveId}-`)) found.push({ name: e.name, status: String(e.status) });
      }
      nextToken = page.nextToken;
    } while (nextToken);
    return found;
  }
}

/** The move an execution runs, from its name (`<moveId>-<attempt>`). */
export function executionMoveId(name: string | undefined): string | undefined {
  return /^(.+)-\d+$/.exec(name ?? '')?.[1];
}
