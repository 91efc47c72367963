/**
 * The operator's actions that start work in the control plane (a move, a
 * saved plan) as plain functions over a connection, shared by the `cells`
 * CLI and the console, so that both do the same thing and refuse the same
 * way.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { savedPlanSchema, type SavedPlan } from '../../control-plane/apply.ts';
import type { ControlPlaneConnection } from '../../control-plane/connect.ts';
import { ensureStateDir } from '../../control-plane/local-target.ts';
import { FINISHED, type MoveRecord, type MoveRequest } from '../../control-plane/move-record.ts';
import { MoveEngine } from '../../control-plane/move-engine.ts';
import type { MoveRunner } from '../../control-plane/apply.ts';
import type { CellOperations } from '../../control-plane/operations.ts';
import { NotFoundError, OperationError } from '../../control-plane/errors.ts';
import { shown } from '../../lib/cli-input.ts';
import { summarizeMoves } from '../../control-plane/plan.ts';

/** How a move request names what moves: the tenant, or the bucket range (`5` or `5-9`). */
export function moveSubject(request: MoveRequest): string {
  if (request.kind === 'tenant') return request.tenantId;
  return request.first === request.last ? String(request.first) : `${request.first}-${request.last}`;
}

export function moveEngine(c: ControlPlaneConnection): MoveEngine {
  return new MoveEngine({ store: c.store, moves: c.moves, cellData: c.cellData });
}

export function moveRunner(c: ControlPlaneConnection): MoveRunner {
  if (!c.runner) throw new OperationError(`${c.target} has no move workflow: deploy the control-plane stack (or restart npm start) first`);
  return c.runner;
}

/** The unfinished move of the same request, if there is one. */
async function runningMove(c: ControlPlaneConnection, request: MoveRequest): Promise<MoveRecord | undefined> {
  const subject = moveSubject(request);
  return (await c.moves.list()).find((m) => !FINISHED.has(m.state) && m.kind === request.kind && m.subject === subject && m.to === request.to);
}

/**
 * Starts a move in the control plane's workflow, or resumes the one running
 * for the same request. The engine refuses what cannot move (an unknown
 * cell, a tenant already there, buckets moving already).
 */
export async function startMove(
  c: ControlPlaneConnection,
  request: MoveRequest,
  options: { by: string; graceSeconds: number },
): Promise<{ record: MoveRecord; resumed: boolean }> {
  const runner = moveRunner(c);
  const running = await runningMove(c, request);
  const record = running ?? (await moveEngine(c).create(request, options));
  await runner.start(record);
  return { record, resumed: running !== undefined };
}

/**
 * Starts the revert of a flipped move in the control plane's workflow: its
 * tenants go back where they came from. Refused (MoveError, with the
 * reason) unless the move waits to forget and no other revert claimed it.
 */
export async function revertMove(c: ControlPlaneConnection, moveId: string, options: { by: string; graceSeconds: number }): Promise<MoveRecord> {
  const reverted = await c.moves.get(moveId);
  if (!reverted) throw new NotFoundError(`no move ${shown(moveId)}`);
  const runner = moveRunner(c);
  const record = await moveEngine(c).revert(moveId, options);
  // The reverted move's workflow hands it over before the revert starts: running, should its execution have stopped.
  await runner.start(reverted);
  await runner.start(record);
  return record;
}

/** Asks the running move of the request to undo itself; refused after its flip. */
export async function abortMove(c: ControlPlaneConnection, request: MoveRequest): Promise<MoveRecord> {
  const running = await runningMove(c, request);
  if (!running) throw new OperationError(`no move of ${request.kind} ${moveSubject(request)} to ${request.to} is running`);
  return abortMoveById(c, running);
}

/** Asks a running move to undo itself; refused after its flip. */
export async function abortMoveById(c: ControlPlaneConnection, move: MoveRecord | string): Promise<MoveRecord> {
  const record = typeof move === 'string' ? await c.moves.get(move) : move;
  if (!record) throw new NotFoundError(`no move ${shown(String(move))}`);
  if (FINISHED.has(record.state)) throw new OperationError(`move ${record.moveId} has ended (${record.state})`);
  if (!(await c.moves.requestAbort(record.moveId))) {
    throw new OperationError(
      `move ${record.moveId} has flipped: ${record.to} owns the tenants now; revert it instead (cells move --revert ${record.moveId})`,
    );
  }
  return record;
}

/** A plan as saved, with a summary of each cell. */
export type SavedPlanFile = SavedPlan & { readonly moveCount: number; readonly cells: Awaited<ReturnType<CellOperations['plan']>>['cells'] };

/** Where a plan of a map version is saved unless told otherwise. */
export function defaultPlanFile(appName: string, version: number | undefined): string {
  return path.join(ensureStateDir(appName), `plan-v${version}.json`);
}

/** Makes the rebalance plan of the current map and saves it where `apply` finds it. */
export async function makePlan(
  operations: CellOperations,
  file: (basedOnVersion: number) => string,
): Promise<{ saved: SavedPlanFile; file: string }> {
  const plan = await operations.plan();
  const saved: SavedPlanFile = {
    basedOnVersion: plan.basedOnVersion,
    createdAt: new Date().toISOString(),
    moveCount: plan.moves.length,
    cells: plan.cells,
    moves: summarizeMoves(plan.moves),
  };
  const target = path.resolve(file(plan.basedOnVersion));
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, `${JSON.stringify(saved, null, 2)}\n`);
  return { saved, file: target };
}

/** A plan file that `makePlan` (or `cells plan`) saved; refused with what is wrong otherwise. */
export function readPlan(file: string): SavedPlan {
  if (!existsSync(file)) throw new OperationError(`no plan at ${path.relative(process.cwd(), file) || file}: make one with npm run cells -- plan`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new OperationError(`${shownPath(file)} is not a plan that cells plan saved: ${(error as Error).message}`);
  }
  const parsed = savedPlanSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field =
      issue.path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index ? '.' : ''}${String(part)}`)).join('') || 'the file';
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : '';
    throw new OperationError(`${shownPath(file)} is not a plan that cells plan saved: ${field} ${issue.message}${more}`);
  }
  // Buckets named twice would be moved twice, or by two moves at once.
  const seen = new Map<number, number>();
  for (const [index, move] of parsed.data.moves.entries()) {
    for (const [first, last] of move.ranges) {
      for (let b = first; b <= last; b++) {
        if (seen.has(b))
          throw new OperationError(
            `${shownPath(file)} is not a plan that cells plan saved: moves[${index}] names bucket ${b}, which moves[${seen.get(b)}] moves too`,
          );
        seen.set(b, index);
      }
    }
  }
  return parsed.data;
}

/** Refuses a plan whose cells are not registered, before any of it runs. */
export async function checkPlanCells(c: ControlPlaneConnection, plan: SavedPlan, file: string): Promise<void> {
  const { cells } = await c.store.readRouting();
  const registered = new Set(cells.map((cell) => cell.cellId));
  for (const [index, move] of plan.moves.entries()) {
    for (const side of ['from', 'to'] as const) {
      if (!registered.has(move[side])) {
        throw new OperationError(
          `${shownPath(file)}: moves[${index}].${side} names ${JSON.stringify(move[side])}, which is no registered cell (cells: ${[...registered].join(', ')})`,
        );
      }
    }
  }
}

function shownPath(file: string): string {
  return path.relative(process.cwd(), file) || file;
}

/**
 * Which moves a workflow runs now, or why that cannot be told: a listing of
 * moves does not fail because Step Functions does not answer.
 */
export async function runningMoves(runner: MoveRunner | undefined): Promise<{ running?: ReadonlySet<string>; unknown?: string }> {
  if (!runner?.runningMoves) return {};
  try {
    return { running: await runner.runningMoves() };
  } catch (error) {
    return { unknown: (error as Error).message };
  }
}
