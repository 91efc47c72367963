/**
 * Moving tenants between cells while they serve: the engine that takes a
 * move one step at a time (its record: move-record.ts; where it is kept:
 * move-store.ts). The
 * control plane's move workflow (lib/move-workflow.ts) calls `step` until
 * the move is done, on AWS and in the local runtime alike; the CLI creates
 * moves and follows their records. Each step picks up from what the record
 * says, so a move that died anywhere goes on when it is stepped again.
 *
 * clone → catch up → fence → final catch up → verify → flip → forget
 *
 * Until forget, the target journals the tenants' writes and the engine
 * copies them back to the source, so a revert (`revert`) is a move the
 * other way that needs no clone.
 *
 * Guarantees, and how they hold (docs/design/moves.md, "Moving tenants"):
 * - Nothing acknowledged is lost: the source refuses the moving tenants'
 *   writes from `fenceAt` (announced WRITE_WINDOW_MS ahead, see
 *   CellMoveMarker), every write acknowledged before was applied by
 *   `fenceAt + WRITE_SETTLE_MS`, and the final catch-up starts after that
 *   and is verified, record by record, before the map flips.
 * - The source accepts nothing after the flip: its ownership record gives
 *   the tenants to the target before the map does.
 * - Before the flip, an abort leaves the source as it was: only the
 *   target's copies and the markers are removed.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CELL_API_TIMEOUT_SECONDS,
  itemKey,
  ORDER_SK_PREFIX,
  WRITE_SETTLE_MS,
  WRITE_WINDOW_MS,
  type CellOwnershipRecord,
  type JournalEntry,
} from '../layers/shared/src/contracts/cell-table.ts';
import { RUNNING_ORDER_STATUSES } from '../layers/shared/src/contracts/order-saga.ts';
import { ID_RULE, isValidId } from '../layers/shared/src/ids.ts';
import { shown } from '../layers/shared/src/shown.ts';
import { encodeBuckets } from '../routing/bucket-codec.ts';
import { type CellData, midSortKey } from './cell-data.ts';
import { ControlPlaneError, InvalidInputError, NotFoundError } from './errors.ts';
import type { CellRecord, MapVersion } from '../routing/records.ts';
import { BUCKET_COUNT, bucketOf, routeTenant, type BucketMap, type Overrides } from '../routing/routing.ts';
import { MapConflictError, UnknownCellError, type ControlPlaneStore } from './store.ts';
import { FINISHED, type MoveRecord, type MoveRequest, type MoveStep, type StepOutcome } from './move-record.ts';
import { MoveRevertedError, type MoveStore } from './move-store.ts';

/** A refusal the operator can act on. */
export class MoveError extends ControlPlaneError {}

export interface MoveEngineDeps {
  readonly store: ControlPlaneStore;
  readonly moves: MoveStore;
  readonly cellData: CellData;
  /**
   * How long one step may work before it saves its checkpoint and hands
   * back to the workflow (copying and forgetting go on in the next step).
   * @default 60 s
   */
  readonly stepBudgetMs?: number;
  /** @default 1,000 */
  readonly pageSize?: number;
  /**
   * How many ranges of keys the clone and the catch-up's pass work on at
   * once: tenants side by side, and a big tenant split in key ranges.
   * @default 4
   */
  readonly copySegments?: number;
  /**
   * How long the final step waits for orders whose saga is running in the
   * source before it lifts the fence and tries again later.
   * @default 30 s
   */
  readonly sagaWaitMs?: number;
  /**
   * How far ahead the fence is announced. Shorter is safe only where no
   * cell API writes to the moving tenants from the move's start until
   * WRITE_WINDOW_MS after its flip (tests of the steps themselves): an
   * instance that has not read the fence judges writes by an older record
   * until then.
   * @default WRITE_WINDOW_MS + 100 ms
   */
  readonly fenceLeadMs?: number;
  /**
   * How long after the fence the final catch-up starts.
   * @default WRITE_SETTLE_MS
   */
  readonly settleMs?: number;
  /**
   * How often, between the flip and forget, the target's journal is copied
   * back to the source (what a revert would otherwise have to copy).
   * @default 5 s
   */
  readonly returnEveryMs?: number;
  readonly now?: () => number;
  /**
   * How the engine waits inside a step (the settle time, running sagas, a
   * flip's back-off): tests pass one that moves their clock.
   * @default node's `setTimeout` from `node:timers/promises`
   */
  readonly sleep?: (ms: number) => Promise<unknown>;
  /** Called as the move goes on (the engine's own log). @default silent */
  readonly log?: (message: string, move: MoveRecord) => void;
}

/** How often a move may lift its fence (orders still running, or a copy that would not verify) before it gives up, leaving the source as it was. */
const MAX_FENCE_ATTEMPTS = 3;
/** A PENDING order this much older than the fence never started its saga (its client was told to retry): it moves as it is. */
const ORPHANED_ORDER_MS = 2 * CELL_API_TIMEOUT_SECONDS * 1_000;
/** How long a flip keeps trying while other changes of the map hold the cells' records (a pin's fence lasts FENCE_WAIT_MS). */
const FLIP_PATIENCE_MS = 60_000;

/**
 * Takes moves from their record one step at a time. Stateless between
 * steps: any engine, in any process, goes on with any move.
 */
export class MoveEngine {
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<unknown>;

  constructor(private readonly deps: MoveEngineDeps) {
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? sleep;
  }

  /**
   * Records a new move after checking it against the map and the moves
   * running: the target must be active and different from the source, and
   * no running move may touch the same buckets or tenants. A bucket range
   * must lie in one source cell.
   */
  async create(request: MoveRequest, options: { by: string; graceSeconds: number }): Promise<MoveRecord> {
    const { cells, version } = await this.deps.store.readRouting();
    if (!version) throw new MoveError('the control plane has no bucket map yet: deploy the control-plane stack (or start npm start) first');
    const target = cells.find((cell) => cell.cellId === request.to);
    if (!target) throw new UnknownCellError(request.to);
    if (target.status !== 'active') throw new MoveError(`${request.to} is ${target.status}: only an active cell takes tenants`);
    let from: string;
    let buckets: number[];
    let tenants: string[];
    let subject: string;
    if (request.kind === 'tenant') {
      if (!isValidId(request.tenantId)) throw new InvalidInputError(`tenant id ${shown(request.tenantId)} ${ID_RULE}`);
      const route = routeTenant(version.map, version.overrides, request.tenantId);
      if (route.cellId === request.to) throw new MoveError(`${request.tenantId} is already in ${request.to}`);
      from = route.cellId;
      buckets = [];
      tenants = [request.tenantId];
      subject = request.tenantId;
    } else {
      if (!(request.first >= 0 && request.last >= request.first && request.last < BUCKET_COUNT)) {
        throw new InvalidInputError(`buckets are 0 to ${BUCKET_COUNT - 1}: give one, or a range a-b with a ≤ b`);
      }
      subject = request.first === request.last ? `${request.first}` : `${request.first}-${request.last}`;
      const range = Array.from({ length: request.last - request.first + 1 }, (_, i) => request.first + i);
      buckets = range.filter((bucket) => version.map[bucket] !== request.to);
      if (buckets.length === 0) throw new MoveError(`buckets ${subject} are already in ${request.to}`);
      const sources = new Set(buckets.map((bucket) => version.map[bucket] as string));
      if (sources.size > 1)
        throw new MoveError(`buckets ${subject} lie in ${[...sources].sort().join(' and ')}: move them one source cell at a time`);
      from = [...sources][0] as string;
      tenants = [];
    }
    if (!cells.some((cell) => cell.cellId === from)) throw new MoveError(`${from} is not registered: its tenants' data cannot be read`);
    const running = (await this.deps.moves.list()).filter((move) => !FINISHED.has(move.state));
    for (const move of running) {
      const theirs = new Set([...move.buckets, ...move.tenants.map(bucketOf)]);
      // Our buckets against their buckets and their tenants' buckets; our tenant against their tenants and buckets (not their
      // tenants' buckets: a neighbour moves on its own).
      const clash =
        buckets.some((bucket) => theirs.has(bucket)) ||
        tenants.some((tenantId) => move.tenants.includes(tenantId) || move.buckets.includes(bucketOf(tenantId)));
      if (clash) {
        throw new MoveError(
          move.state === 'forget'
            ? `move ${move.moveId} (${move.kind} ${move.subject} to ${move.to}) flipped and forgets its source's copy at ${new Date(move.forgetAt ?? 0).toISOString()}: wait for it, or revert it`
            : `move ${move.moveId} (${move.kind} ${move.subject} to ${move.to}) is running on the same tenants: wait for it, or abort it`,
        );
      }
    }
    const at = this.now();
    const record: MoveRecord = {
      moveId: newMoveId(at),
      kind: request.kind,
      subject,
      buckets,
      tenants,
      from,
      to: request.to,
      state: 'clone',
      steps: {},
      copied: 0,
      fenceAttempts: 0,
      graceSeconds: options.graceSeconds,
      by: options.by,
      createdAt: at,
      updatedAt: at,
    };
    await this.deps.moves.create(record);
    return record;
  }

  /**
   * Takes a flipped move's tenants back where they came from: a new move,
   * the other way, that starts from the source's copy (kept current since
   * the flip) and goes through the same fence. Only while the move waits to
   * forget: before its flip an abort undoes it, after forget nothing is
   * left to go back to. The revert and its claim on the move are one
   * transaction, so two reverts of one move cannot both start.
   */
  async revert(moveId: string, options: { by: string; graceSeconds: number }): Promise<MoveRecord> {
    const move = await this.deps.moves.get(moveId);
    if (!move) throw new NotFoundError(`no move ${shown(moveId)}`);
    this.refuseRevert(move);
    const { cells } = await this.deps.store.readRouting();
    const back = cells.find((cell) => cell.cellId === move.from);
    if (!back) throw new MoveError(`${move.from} is no longer registered: the tenants cannot go back to it`);
    if (back.status !== 'active') throw new MoveError(`${move.from} is ${back.status}: only an active cell takes tenants back`);
    const at = this.now();
    const record: MoveRecord & { revertOf: string } = {
      moveId: newMoveId(at),
      kind: move.kind,
      subject: move.subject,
      buckets: move.buckets,
      tenants: move.tenants,
      from: move.to,
      to: move.from,
      state: 'clone',
      steps: {},
      copied: 0,
      fenceAttempts: 0,
      graceSeconds: options.graceSeconds,
      revertOf: move.moveId,
      by: options.by,
      createdAt: at,
      updatedAt: at,
    };
    if (await this.deps.moves.createRevert(record)) return record;
    // Another revert, or forget, got there first: say which.
    const now = await this.deps.moves.get(moveId);
    if (now) this.refuseRevert(now);
    throw new MoveError(`move ${moveId} changed while the revert was recorded: look at it again (cells moves)`);
  }

  /** Refuses a revert of a move that is not waiting to forget, with the reason and what to do instead. */
  private refuseRevert(move: MoveRecord): void {
    const what = `${move.kind} ${move.subject}`;
    switch (move.state) {
      case 'forget':
        if (move.revertedBy) throw new MoveError(`move ${move.moveId} is being reverted already, by move ${move.revertedBy}`);
        if (move.forgetting)
          throw new MoveError(
            `move ${move.moveId} is forgetting ${move.from}'s copy: too late to revert; move ${what} back to ${move.from} as a new move`,
          );
        return;
      case 'done':
        throw new MoveError(
          `move ${move.moveId} is done: ${move.from}'s copy was forgotten, so there is nothing to go back to; move ${what} back to ${move.from} as a new move`,
        );
      case 'reverted':
        throw new MoveError(`move ${move.moveId} was reverted already, by move ${move.revertedBy ?? 'unknown'}`);
      case 'aborted':
      case 'failed':
        throw new MoveError(`move ${move.moveId} ${move.state} before its flip: ${what} never left ${move.from}`);
      default:
        throw new MoveError(
          `move ${move.moveId} has not flipped (${move.state}): ${move.from} still serves ${what}; to undo it, abort it (cells move ${move.kind} ${move.subject} ${move.to} --abort)`,
        );
    }
  }

  /** Takes the move one step on; safe to call again after any failure, in any process. */
  async step(moveId: string): Promise<StepOutcome> {
    const move = await this.deps.moves.get(moveId);
    if (!move) throw new NotFoundError(`no move ${shown(moveId)}`);
    if (FINISHED.has(move.state)) return { next: 'done', state: move.state };
    const { cells, version } = await this.deps.store.readRouting();
    const cell = (cellId: string) => {
      const found = cells.find((c) => c.cellId === cellId);
      if (!found) throw new MoveError(`${cellId} is not registered`);
      return found;
    };
    const source = cell(move.from);
    const target = cell(move.to);
    const current = version!;
    if (move.revertedBy) return this.handOver(move, source, target);
    if (move.revertOf && !move.steps.clone) {
      // The reverted move stops first (its copying back, its marker): nothing of it runs once this one starts.
      const reverted = await this.deps.moves.get(move.revertOf);
      if (reverted?.state !== 'reverted') return { next: 'wait', seconds: 1 };
    }
    if (move.ending) return this.abort(move, source, target, move.ending.state, move.ending.reason);
    if (move.abortRequested && move.flippedAt === undefined && !this.flipped(move, current)) return this.abort(move, source, target, 'aborted');
    try {
      switch (move.state) {
        case 'clone':
          return await this.clone(move, source, target, current);
        case 'catch up':
          return await this.catchUp(move, source, target, current);
        case 'fence':
          return await this.fence(move, source, target);
        case 'final':
          return await this.final(move, source, target, cells);
        case 'forget':
          return await this.forget(move, source, target);
        default:
          return { next: 'done', state: move.state };
      }
    } catch (error) {
      if (error instanceof MoveFailure) return this.abort(move, source, target, 'failed', error.message);
      // Claimed by a revert mid-step: the next step hands the move over.
      if (error instanceof MoveRevertedError) return { next: 'continue' };
      throw error;
    }
  }

  /** A revert claimed this move: it stops copying back, takes its marker and journal out of the target, and ends as `reverted`. */
  private async handOver(move: MoveRecord, source: CellRecord, target: CellRecord): Promise<StepOutcome> {
    await this.deps.cellData.removeMarker(target, move.moveId);
    // What the target journals for this move from now on is the revert's to clear, at its end (clearJournals).
    await this.clearJournals(move, source, target);
    this.end(move, 'forget');
    move.state = 'reverted';
    await this.save(move, `reverted by move ${move.revertedBy}: ${move.from} keeps its copy, the revert takes the tenants back`);
    return { next: 'done', state: 'reverted' };
  }

  /** Copies the tenants' records page by page, saving where it got to after each page. */
  private async clone(move: MoveRecord, source: CellRecord, target: CellRecord, current: MapVersion): Promise<StepOutcome> {
    const started = this.now();
    if (!move.steps.clone) {
      // Announced to both cells before anything is copied: the target re-reads its record at once for these tenants once they flip.
      await Promise.all([
        this.deps.cellData.putMarker(source, {
          moveId: move.moveId,
          role: 'source',
          buckets: move.buckets,
          tenants: move.kind === 'tenant' ? move.tenants : [],
        }),
        this.deps.cellData.putMarker(target, {
          moveId: move.moveId,
          role: 'target',
          buckets: move.buckets,
          tenants: move.kind === 'tenant' ? move.tenants : [],
        }),
      ]);
      this.begin(move, 'clone');
      // From here every cell API instance has read the markers, or can no longer write by what it read before them.
      move.journalFrom = this.now() + this.journalSettleMs();
      move.tenants = await this.tenantsOf(move, source, current);
      if (move.revertOf) {
        // The target is where the tenants came from, and its copy was kept current: the catch-up's pass finds what differs.
        this.end(move, 'clone');
        move.state = 'catch up';
        await this.save(move, `reverting move ${move.revertOf}: ${target.cellId} kept its copy current, nothing to clone; catching up`);
        return { next: 'continue' };
      }
      move.checkpoint = { tenant: 0 };
      await this.save(move, 'announced to both cells; cloning');
    }
    const finished = await this.pageByPage(move, source, target, started, async (tenantId, range) => {
      const page = await this.deps.cellData.page(source, tenantId, this.deps.pageSize ?? 1_000, range.after, range.upTo);
      await this.deps.cellData.putCopies(target, page.items);
      return { written: page.items.length, ...(page.lastKey && { lastKey: page.lastKey }) };
    });
    if (!finished) return { next: 'continue' };
    this.end(move, 'clone');
    move.state = 'catch up';
    await this.save(move, `cloned ${move.copied} records`);
    return { next: 'continue' };
  }

  /**
   * One reconciling pass over every moving tenant, record by record, while
   * they still take writes: the whole-tenant check, done before the fence.
   * It starts once the journal holds every write, so whatever changes after
   * it read a record is in the journal, and the fence needs only that.
   */
  private async catchUp(move: MoveRecord, source: CellRecord, target: CellRecord, current: MapVersion): Promise<StepOutcome> {
    const journalWait = (move.journalFrom ?? 0) - this.now();
    if (journalWait > 0) return { next: 'wait', seconds: Math.ceil(journalWait / 1_000) };
    const started = this.now();
    if (move.checkpoint === undefined) {
      this.begin(move, 'catch up');
      move.tenants = await this.tenantsOf(move, source, current);
      move.checkpoint = { tenant: 0 };
      await this.save(move);
    }
    const finished = await this.pageByPage(move, source, target, started, async (tenantId, range) => {
      const page = await this.deps.cellData.reconcile(source, target, tenantId, {
        startKey: range.after,
        upTo: range.upTo,
        limit: this.deps.pageSize ?? 1_000,
      });
      // Orders whose saga runs on write the order and its items without the cell API: into the journal (until the saga
      // ends) before the page counts as done. One that ended before the pass read it was copied as it ended; one placed
      // since the journal began is journaled by the cell API.
      await this.deps.cellData.addToJournal(
        source,
        move.moveId,
        page.runningOrders.map((recordSk) => ({ tenantId, recordSk, at: this.now() })),
      );
      return page;
    });
    if (!finished) return { next: 'continue' };
    this.end(move, 'catch up');
    move.state = 'fence';
    await this.save(move, 'caught up');
    return { next: 'continue' };
  }

  /**
   * Announces the fence WRITE_WINDOW_MS ahead (a cell API instance that has
   * not read the marker by then can no longer write by its older record),
   * and catches up once more meanwhile.
   */
  private async fence(move: MoveRecord, source: CellRecord, target: CellRecord): Promise<StepOutcome> {
    if (move.fenceAt === undefined) {
      move.fenceAt = this.now() + (this.deps.fenceLeadMs ?? WRITE_WINDOW_MS + 100);
      await this.deps.cellData.putMarker(source, {
        moveId: move.moveId,
        role: 'source',
        buckets: move.buckets,
        tenants: move.kind === 'tenant' ? move.tenants : [],
        fenceAt: move.fenceAt,
      });
      this.begin(move, 'fence');
      await this.save(move, `fence at ${new Date(move.fenceAt).toISOString()}`);
      // The lead time is not lost: the tenants take writes meanwhile, and what they write now need not be copied inside the fence.
      this.tallyOut(move, await this.copyChanges(move, source, target, false));
      await this.save(move);
    }
    move.state = 'final';
    await this.save(move);
    return { next: 'wait', seconds: Math.max(0, Math.floor((move.fenceAt - this.now()) / 1_000)) };
  }

  /**
   * The fenced window, in one go: wait for the writes acknowledged before
   * the fence to land and for the running sagas to end, catch up, verify
   * every record, flip. Lifts the fence and goes back to catching up when
   * a saga runs on too long or the copy does not verify.
   */
  private async final(move: MoveRecord, source: CellRecord, target: CellRecord, cells: readonly CellRecord[]): Promise<StepOutcome> {
    const fenceAt = move.fenceAt!;
    const settled = fenceAt + (this.deps.settleMs ?? WRITE_SETTLE_MS);
    if (this.now() < settled) await this.sleep(settled - this.now());
    this.end(move, 'fence', settled);
    const { version } = await this.deps.store.readRouting();
    let others: Promise<unknown> = Promise.resolve();
    if (!this.flipped(move, version!)) {
      const journaled = await this.sagasEnded(move, source, fenceAt);
      if (!journaled) return this.liftFence(move, source, 'orders of the moving tenants were still running');
      this.begin(move, 'final catch up');
      const copied = await this.copyChanges(move, source, target, true, journaled);
      const changes = copied.changes;
      this.tallyOut(move, copied);
      this.end(move, 'final catch up');
      this.begin(move, 'verify');
      const verified = await this.verifyChanges(source, target, changes);
      // Each changed record read once to copy it and once on each side to check it.
      move.fenced = { changes: changes.reduce((n, c) => n + c.entries.length, 0), reads: changes.reduce((n, c) => n + c.sks.length, 0) * 3 };
      if (!verified) return this.liftFence(move, source, 'the copy did not verify');
      move.verified = verified;
      this.end(move, 'verify');
      this.begin(move, 'flip');
      const flipped = await this.flip(move, source, target, cells, version!);
      move.mapVersion = flipped.version;
      others = flipped.others;
    } else {
      // Flipped by a run that died before saving: the fenced source has not changed since, and its journal is still there.
      move.verified ??= await this.verifyChanges(source, target, await this.changesOf(move, source));
      move.mapVersion ??= version!.version;
      this.begin(move, 'flip');
    }
    move.flippedAt ??= this.now();
    move.fencedMs = move.flippedAt - fenceAt;
    // The other cells' copies of the new version: after the window, they serve none of these tenants either way.
    await others;
    // The target's marker stays until forget: its writes of the tenants are journaled, and copied back to the source.
    await this.deps.cellData.removeMarker(source, move.moveId);
    this.end(move, 'flip');
    move.state = 'forget';
    move.forgetAt = this.now() + move.graceSeconds * 1_000;
    this.begin(move, 'forget');
    await this.save(move, `flipped in map version ${move.mapVersion}; writes were refused for ${move.fencedMs} ms`);
    await this.deps.cellData.clearJournal(source, move.moveId);
    return { next: 'wait', seconds: Math.min(this.returnEverySeconds(), Math.max(0, Math.ceil((move.forgetAt - this.now()) / 1_000))) };
  }

  /**
   * Until the grace period ends, copies what the target's journal says
   * changed back to the source, every few seconds, so that a revert finds
   * the source current. Then claims the move (no revert can start after
   * that) and removes the source's copy, a page at a time.
   */
  private async forget(move: MoveRecord, source: CellRecord, target: CellRecord): Promise<StepOutcome> {
    const wait = (move.forgetAt ?? 0) - this.now();
    if (wait > 0 && !move.forgetting) {
      const copied = await this.copyChanges(move, target, source, false);
      const returned = move.returned ?? { passes: 0, changes: 0, reads: 0 };
      move.returned = { passes: returned.passes + 1, changes: returned.changes + copied.entries, reads: returned.reads + copied.reads };
      await this.save(move);
      return { next: 'wait', seconds: Math.min(this.returnEverySeconds(), Math.ceil(wait / 1_000)) };
    }
    if (!move.forgetting) {
      // A revert that claimed the move first wins: the next step hands it over.
      if (!(await this.deps.moves.claimForgetting(move.moveId))) return { next: 'continue' };
      move.forgetting = true;
      await this.save(move, `forgetting ${source.cellId}'s copy: the move can no longer be reverted`);
    }
    if (move.unmarkedAt === undefined) {
      // Nothing is copied back any more: the target stops journaling.
      await this.deps.cellData.removeMarker(target, move.moveId);
      move.unmarkedAt = this.now();
      await this.save(move);
    }
    if (!(await this.removeTenants(move, source))) return { next: 'continue' };
    // An instance that read the marker before it went may still journal a write, until its write window closes.
    const journaling = move.unmarkedAt + this.journalSettleMs() - this.now();
    if (journaling > 0) return { next: 'wait', seconds: Math.ceil(journaling / 1_000) };
    await this.clearJournals(move, source, target);
    this.end(move, 'forget');
    move.state = 'done';
    await this.save(move, 'done; the source copy is forgotten');
    return { next: 'done', state: 'done' };
  }

  /**
   * Removes the moving tenants' records and directory entries from a cell, a
   * page at a time, for at most the step's budget: false when the budget ran
   * out first (the next step goes on where this one stopped).
   */
  private async removeTenants(move: MoveRecord, cell: CellRecord): Promise<boolean> {
    const started = this.now();
    for (const tenantId of move.tenants) {
      for (;;) {
        const page = await this.deps.cellData.page(cell, tenantId, this.deps.pageSize ?? 1_000);
        if (page.items.length === 0) break;
        await this.deps.cellData.remove(cell, page.items as Array<{ pk: unknown; sk: unknown }>);
        if (this.now() - started >= (this.deps.stepBudgetMs ?? 60_000)) return false;
      }
      await this.deps.cellData.removeDirectoryEntry(cell, bucketOf(tenantId), tenantId);
    }
    return true;
  }

  /**
   * The journals of the move in both cells, and of the move it reverts:
   * that one's target marker went when the revert began, and an instance
   * that had read it may have journaled a write for it since.
   */
  private async clearJournals(move: MoveRecord, source: CellRecord, target: CellRecord): Promise<void> {
    const moveIds = [move.moveId, ...(move.revertOf ? [move.revertOf] : [])];
    await Promise.all(
      moveIds.flatMap((moveId) => [this.deps.cellData.clearJournal(source, moveId), this.deps.cellData.clearJournal(target, moveId)]),
    );
  }

  /** Before the flip only: the target's copies and both markers go, the source is left as it was. */
  private async abort(move: MoveRecord, source: CellRecord, target: CellRecord, state: 'aborted' | 'failed', reason?: string): Promise<StepOutcome> {
    if (move.ending === undefined) {
      // Recorded first: an abort that takes several steps (a big copy to remove) goes on as one.
      move.ending = { state, ...(reason !== undefined && { reason }) };
      await this.deps.cellData.removeMarker(source, move.moveId);
      // Only a move that announced itself had a marker some instance may still journal by.
      if (move.steps.clone) move.unmarkedAt = this.now();
      await this.save(move);
    }
    if (!(await this.removeTenants(move, target))) return { next: 'continue' };
    await this.deps.cellData.removeMarker(target, move.moveId);
    // An instance that read the source's marker before it went may still journal a write, until its write window closes.
    const journaling = move.unmarkedAt === undefined ? 0 : move.unmarkedAt + this.journalSettleMs() - this.now();
    if (journaling > 0) return { next: 'wait', seconds: Math.ceil(journaling / 1_000) };
    await this.clearJournals(move, source, target);
    move.state = state;
    delete move.fenceAt;
    delete move.checkpoint;
    if (reason) move.error = reason;
    await this.save(move, state === 'aborted' ? 'aborted: the source is as it was' : `failed (${reason}): the source is as it was`);
    return { next: 'done', state };
  }

  private async liftFence(move: MoveRecord, source: CellRecord, reason: string): Promise<StepOutcome> {
    move.fenceAttempts += 1;
    if (move.fenceAttempts >= MAX_FENCE_ATTEMPTS) throw new MoveFailure(`${reason}, ${move.fenceAttempts} times`);
    await this.deps.cellData.putMarker(source, {
      moveId: move.moveId,
      role: 'source',
      buckets: move.buckets,
      tenants: move.kind === 'tenant' ? move.tenants : [],
    });
    delete move.fenceAt;
    for (const step of ['fence', 'final catch up', 'verify'] as const) delete move.steps[step];
    move.state = 'catch up';
    await this.save(move, `fence lifted (${reason}); catching up again`);
    return { next: 'wait', seconds: 5 };
  }

  /**
   * Works through the moving tenants a page at a time from the move's
   * checkpoint, saving it after each round of pages, until done (true) or
   * the step's budget is spent (false): a tenant of any size takes as many
   * steps as it needs. Up to `copySegments` ranges go at once: the next
   * tenants, and while there are fewer of those, a big tenant's remaining
   * keys split in two. A tenant done, its directory entry goes to the
   * target too.
   */
  private async pageByPage(
    move: MoveRecord,
    source: CellRecord,
    target: CellRecord,
    started: number,
    page: (tenantId: string, range: KeyRange) => Promise<{ written: number; lastKey?: Record<string, unknown> }>,
  ): Promise<boolean> {
    const checkpoint = move.checkpoint ?? { tenant: 0 };
    let segments: Segment[] = checkpoint.segments ?? (checkpoint.lastKey ? [{ tenant: checkpoint.tenant, after: checkpoint.lastKey }] : []);
    let next = checkpoint.lastKey && !checkpoint.segments ? checkpoint.tenant + 1 : checkpoint.tenant;
    const width = Math.max(1, this.deps.copySegments ?? 4);
    for (;;) {
      while (segments.length < width && next < move.tenants.length) segments.push({ tenant: next++ });
      if (segments.length === 0) break;
      if (segments.length < width) segments = await this.split(move, source, segments, width);
      const done = await Promise.all(segments.map((segment) => page(move.tenants[segment.tenant] as string, segment)));
      const going: Segment[] = [];
      done.forEach((result, i) => {
        move.copied += result.written;
        if (result.lastKey) going.push({ ...segments[i]!, after: result.lastKey });
      });
      const ended = new Set(segments.filter((segment) => !going.some((g) => g.tenant === segment.tenant)).map((segment) => segment.tenant));
      for (const tenant of ended) await this.copyDirectoryEntry(source, target, move.tenants[tenant] as string);
      segments = going;
      move.checkpoint = { tenant: next, segments };
      await this.save(move);
      if (this.now() - started >= (this.deps.stepBudgetMs ?? 60_000)) return false;
    }
    delete move.checkpoint;
    return true;
  }

  /**
   * Splits ranges under way (those past their first page: big ones) at the
   * middle of their remaining keys in the source, until there are `width`
   * ranges or none splits. Any split point is correct; a middle one shares
   * the work.
   */
  private async split(move: MoveRecord, source: CellRecord, segments: Segment[], width: number): Promise<Segment[]> {
    const result = [...segments];
    for (const segment of segments) {
      if (result.length >= width) break;
      if (!segment.after) continue;
      const tenantId = move.tenants[segment.tenant] as string;
      const last = await this.deps.cellData.lastSortKey(source, tenantId, segment.upTo);
      const middle = last === undefined ? undefined : midSortKey(String(segment.after.sk), last);
      if (middle === undefined) continue;
      result.splice(
        result.indexOf(segment),
        1,
        { ...segment, upTo: middle },
        { tenant: segment.tenant, after: { pk: segment.after.pk, sk: middle }, ...(segment.upTo !== undefined && { upTo: segment.upTo }) },
      );
    }
    return result;
  }

  /** Whether the map already gives the moving tenants to the target: the flip happened (the run that made it may have died after). */
  private flipped(move: MoveRecord, current: MapVersion): boolean {
    if (move.kind === 'tenant') return routeTenant(current.map, current.overrides, move.subject).cellId === move.to;
    return move.buckets.every((bucket) => current.map[bucket] === move.to);
  }

  /**
   * The new map version: the target's and the source's ownership records
   * first (so the source refuses the tenants before any router sends them
   * to the target), then the map, then the other cells' records. Retried
   * from a fresh read while another change holds the map or the records.
   */
  private async flip(
    move: MoveRecord,
    source: CellRecord,
    target: CellRecord,
    cells: readonly CellRecord[],
    read: MapVersion,
  ): Promise<{ version: number; others: Promise<unknown> }> {
    const giveUpAt = this.now() + FLIP_PATIENCE_MS;
    // The map as the final step read it, then as it is after each lost race.
    let current: MapVersion | undefined = read;
    while (this.now() < giveUpAt) {
      current ??= (await this.deps.store.readRouting()).version!;
      if (this.flipped(move, current)) return { version: current.version, others: Promise.resolve([]) };
      const next = this.nextMap(move, current);
      const record: CellOwnershipRecord & { writtenBy: string } = {
        epoch: current.version + 1,
        ...encodeBuckets(next.map),
        overrides: next.overrides,
        writtenBy: move.moveId,
        writtenAt: this.now(),
      };
      const claimed = await Promise.all([this.deps.cellData.claimOwnership(target, record), this.deps.cellData.claimOwnership(source, record)]);
      if (!claimed.every(Boolean)) {
        // Another change holds a record as new (a pin's fence, another move's flip): its map version comes soon.
        await this.sleep(20 + Math.random() * 40);
        current = undefined;
        continue;
      }
      try {
        const change = `move ${move.kind} ${move.subject} from ${move.from} to ${move.to} (${move.moveId})`;
        const written = await this.deps.store.writeVersion(
          current.version,
          { ...next, change, by: move.by, createdAt: new Date(this.now()).toISOString() },
          cells,
        );
        const others = cells
          .filter((c) => c.cellId !== source.cellId && c.cellId !== target.cellId)
          .map((c) => this.deps.cellData.claimOwnership(c, record).catch(() => false));
        return { version: written.version, others: Promise.all(others) };
      } catch (error) {
        // Another change wrote the next version first: read it and go on from there, at once.
        if (!(error instanceof MapConflictError)) throw error;
        current = undefined;
      }
    }
    throw new Error('the map kept changing under the flip; the move goes on when it is stepped again');
  }

  private nextMap(move: MoveRecord, current: MapVersion): { map: BucketMap; overrides: Overrides } {
    if (move.kind === 'bucket') {
      const map = [...current.map];
      for (const bucket of move.buckets) map[bucket] = move.to;
      return { map, overrides: current.overrides };
    }
    const tenantId = move.subject;
    const { [tenantId]: _old, ...rest } = current.overrides;
    // Back to its bucket's cell: no pin needed.
    const overrides = current.map[bucketOf(tenantId)] === move.to ? rest : { ...rest, [tenantId]: move.to };
    return { map: current.map, overrides };
  }

  /**
   * Waits (at most sagaWaitMs) until no order of the moving tenants has a
   * saga running in the source. Only the journal's orders can: every order
   * placed during the move is journaled by the cell API, every one running
   * before it by the catch-up. Once none runs, the fenced journal changes no
   * more: what it last read is what the final catch-up copies.
   */
  private async sagasEnded(move: MoveRecord, source: CellRecord, fenceAt: number): Promise<Change[] | undefined> {
    const deadline = this.now() + (this.deps.sagaWaitMs ?? 30_000);
    for (;;) {
      const changes = await this.changesOf(move, source);
      const orders = changes.map((change) => ({ ...change, sks: change.sks.filter((sk) => sk.startsWith(ORDER_SK_PREFIX)) }));
      const read = await inBatches(orders, (change) => this.deps.cellData.read(source, change.tenantId, change.sks));
      const running = read
        .flat()
        .filter((order) => RUNNING_ORDER_STATUSES.includes(String(order.status)))
        .map((order) => ({ status: String(order.status), createdAt: String(order.createdAt) }));
      // A PENDING order long older than the fence never started its saga: its client retries, and the retry starts it in the target.
      const live = running.filter((order) => !(order.status === 'PENDING' && Date.parse(order.createdAt) < fenceAt - ORPHANED_ORDER_MS));
      if (live.length === 0) return changes;
      if (this.now() >= deadline) return undefined;
      await this.sleep(100);
    }
  }

  /** The journal's changes, by tenant: the keys written since the catch-up read them. */
  private async changesOf(move: MoveRecord, source: CellRecord): Promise<Change[]> {
    const byTenant = new Map<string, { entries: JournalEntry[]; sks: Set<string> }>();
    for (const entry of await this.deps.cellData.journal(source, move.moveId)) {
      const change = byTenant.get(entry.tenantId) ?? { entries: [], sks: new Set<string>() };
      change.entries.push(entry);
      change.sks.add(entry.recordSk);
      byTenant.set(entry.tenantId, change);
    }
    return [...byTenant].map(([tenantId, { entries, sks }]) => ({ tenantId, entries, sks: [...sks] }));
  }

  /**
   * Copies what the journal says changed. An order copied brings its items
   * (its saga writes them) and stays in the journal while its saga runs.
   * Before the fence, an entry leaves the journal once its write has surely
   * landed before the copy read it; inside the fence every write has.
   */
  private async copyChanges(move: MoveRecord, source: CellRecord, target: CellRecord, fenced: boolean, read?: Change[]): Promise<CopiedChanges> {
    const changes = read ?? (await this.changesOf(move, source));
    const copiedAt = this.now();
    let reads = 0;
    let written = 0;
    const done = await inBatches(changes, async (change) => {
      if (!move.tenants.includes(change.tenantId)) {
        // A tenant of the buckets whose first write came after the catch-up read the directory.
        move.tenants.push(change.tenantId);
        await this.copyDirectoryEntry(source, target, change.tenantId);
      }
      const copied = await this.deps.cellData.copyKeys(source, target, change.tenantId, change.sks);
      const lines = copied.records.filter((record) => String(record.sk).startsWith(ORDER_SK_PREFIX)).flatMap(orderItemSks);
      const running = new Set(
        copied.records.filter((record) => RUNNING_ORDER_STATUSES.includes(String(record.status))).map((record) => String(record.sk)),
      );
      const items = lines.length ? await this.deps.cellData.copyKeys(source, target, change.tenantId, [...new Set(lines)]) : { written: 0 };
      reads += change.sks.length + lines.length;
      written += copied.written + items.written;
      const settled = change.entries.filter((entry) => !running.has(entry.recordSk) && (fenced || copiedAt - entry.at >= this.journalSettleMs()));
      if (!fenced) await this.deps.cellData.dropFromJournal(source, move.moveId, settled);
      return { ...change, sks: [...change.sks, ...lines] };
    });
    return { changes: done, entries: changes.reduce((n, c) => n + c.entries.length, 0), reads, written };
  }

  /** Counts a catch-up from the journal on the way out: records written, and what it read per change. */
  private tallyOut(move: MoveRecord, copied: CopiedChanges): void {
    const delta = move.delta ?? { passes: 0, changes: 0, reads: 0 };
    move.delta = { passes: delta.passes + 1, changes: delta.changes + copied.entries, reads: delta.reads + copied.reads };
    move.copied += copied.written;
  }

  /** The changed records, compared in both cells: their number and digest when every one agrees, undefined when one does not. */
  private async verifyChanges(
    source: CellRecord,
    target: CellRecord,
    changes: readonly Change[],
  ): Promise<{ records: number; checksum: string } | undefined> {
    const compared = await inBatches(changes, (change) => this.deps.cellData.differingKeys(source, target, change.tenantId, change.sks));
    if (compared.some((result) => result.differing.length > 0)) return undefined;
    return { records: compared.reduce((n, r) => n + r.compared, 0), checksum: compared.map((r) => r.checksum).join(':') };
  }

  private async copyDirectoryEntry(source: CellRecord, target: CellRecord, tenantId: string): Promise<void> {
    const entry = await this.deps.cellData.directoryEntry(source, bucketOf(tenantId), tenantId);
    if (entry) await this.deps.cellData.putDirectoryEntry(target, entry);
  }

  /** A bucket move's tenants: those of its buckets in the source's directory that the map routes by bucket (pinned ones stay). */
  private async tenantsOf(move: MoveRecord, source: CellRecord, current: MapVersion): Promise<string[]> {
    if (move.kind === 'tenant') return move.tenants;
    const found = new Set(move.tenants);
    // One small Query per bucket: many at once (a plan's chunk is up to 1,024 buckets).
    const lists = await inBatches(move.buckets, (bucket) => this.deps.cellData.tenantsIn(source, bucket), 32);
    for (const tenantId of lists.flat()) {
      if (routeTenant(current.map, current.overrides, tenantId).reason === 'map') found.add(tenantId);
    }
    // Those found before keep their place: the clone's checkpoint counts by position.
    return [...move.tenants, ...[...found].filter((t) => !move.tenants.includes(t)).sort()];
  }

  /**
   * How long after a cell learns of a move (its marker), or after a journal
   * entry, a write of the moving tenants has surely landed: the fence's lead
   * and the settle time, which hold the cell API's writes the same way
   * (JOURNAL_SETTLE_MS by default).
   */
  private journalSettleMs(): number {
    return (this.deps.fenceLeadMs ?? WRITE_WINDOW_MS + 100) + (this.deps.settleMs ?? WRITE_SETTLE_MS);
  }

  private returnEverySeconds(): number {
    return Math.max(1, Math.round((this.deps.returnEveryMs ?? 5_000) / 1_000));
  }

  private begin(move: MoveRecord, step: MoveStep, at = this.now()): void {
    move.steps[step] ??= { startedAt: at };
  }

  private end(move: MoveRecord, step: MoveStep, at = this.now()): void {
    const times = move.steps[step] ?? { startedAt: at };
    move.steps[step] = { startedAt: times.startedAt, endedAt: times.endedAt ?? at };
  }

  private async save(move: MoveRecord, message?: string): Promise<void> {
    move.updatedAt = this.now();
    await this.deps.moves.save(move);
    if (message) this.deps.log?.(message, move);
  }
}

/** The move cannot go on: it ends as `failed`, with the source as it was. */
class MoveFailure extends Error {}

/** A range of a tenant's keys: after `after` (exclusive), up to `upTo` (inclusive); open where absent. */
interface KeyRange {
  readonly after?: Record<string, unknown>;
  readonly upTo?: string;
}

/** A range of keys of one moving tenant (its index in the move's `tenants`) under way. */
interface Segment extends KeyRange {
  readonly tenant: number;
}

/** A move's id: when it was made, to the second, and a random suffix. */
function newMoveId(at: number): string {
  return `${new Date(at)
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}-${randomBytes(3).toString('hex')}`;
}

/** What one catch-up from a journal did: the changes (with the order lines they brought), entries, records read and written. */
interface CopiedChanges {
  readonly changes: Change[];
  readonly entries: number;
  readonly reads: number;
  readonly written: number;
}

/** One tenant's changes in the journal: its entries and the record keys they name. */
interface Change {
  readonly tenantId: string;
  readonly entries: JournalEntry[];
  readonly sks: string[];
}

/** The sort keys of an order's items: its saga reserves and releases their stock. */
function orderItemSks(order: Record<string, unknown>): string[] {
  const lines = Array.isArray(order.lines) ? (order.lines as Array<{ itemId?: unknown }>) : [];
  return lines.filter((line) => typeof line.itemId === 'string').map((line) => itemKey(String(order.tenantId), String(line.itemId)).sk);
}

/** Runs `work` over the values a few at a time (cells' tables are shared with live traffic). */
async function inBatches<T, R>(values: readonly T[], work: (value: T) => Promise<R>, size = 8): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < values.length; start += size) {
    results.push(...(await Promise.all(values.slice(start, start + size).map(work))));
  }
  return results;
}
