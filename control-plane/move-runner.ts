import { paginateListExecutions, StartExecutionCommand, type ExecutionListItem, type ExecutionStatus, type SFNClient } from '@aws-sdk/client-sfn';
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
    for await (const e of this.executions('RUNNING')) {
      const moveId = executionMoveId(e.name);
      if (moveId) running.add(moveId);
    }
    return running;
  }

  private async executionsOf(moveId: string): Promise<Array<{ name: string; status: string }>> {
    const found: Array<{ name: string; status: string }> = [];
    for await (const e of this.executions()) {
      if (e.name?.startsWith(`${moveId}-`)) found.push({ name: e.name, status: String(e.status) });
    }
    return found;
  }

  /** The workflow's executions, every page of them, of one status when given. */
  private async *executions(statusFilter?: ExecutionStatus): AsyncGenerator<ExecutionListItem> {
    const pages = paginateListExecutions(
      { client: this.sfn, pageSize: 1_000 },
      { stateMachineArn: this.stateMachineArn, ...(statusFilter && { statusFilter }) },
    );
    for await (const page of pages) yield* page.executions ?? [];
  }
}

/** The move an execution runs, from its name (`<moveId>-<attempt>`). */
export function executionMoveId(name: string | undefined): string | undefined {
  return /^(.+)-\d+$/.exec(name ?? '')?.[1];
}
