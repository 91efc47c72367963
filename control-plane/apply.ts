/**
 * `cells apply`: a saved rebalance plan carried out as bucket moves, a few
 * at a time. The moves themselves run in the control plane's workflow; this
 * only schedules them and reports. It keeps no state of its own: what is
 * done is read from the map (the chunk's buckets are in their new cell) and
 * from the moves' records, so an apply that was interrupted (Ctrl-C, a lost
 * laptop) goes on where it was when it is run again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { ControlPlaneError } from './errors.ts';
import { BUCKET_COUNT } from '../routing/routing.ts';
import { FINISHED, type MoveRecord } from './move-record.ts';
import type { MoveStore } from './move-store.ts';
import type { MoveEngine } from './move-engine.ts';
import type { ControlPlaneStore } from './store.ts';

const bucket = z
  .number('must be a bucket number')
  .int('must be a whole bucket number')
  .min(0, `must be a bucket from 0 to ${BUCKET_COUNT - 1}`)
  .max(BUCKET_COUNT - 1, `must be a bucket from 0 to ${BUCKET_COUNT - 1}`);

/** A plan as `cells plan` saves it: checked whole before anything runs, so that a plan moves what it says or nothing. */
export const savedPlanSchema = z.object(
  {
    basedOnVersion: z.number('must be a map version').int('must be a whole map version').positive('must be a map version (1 or more)'),
    createdAt: z.string().optional(),
    moves: z.array(
      z
        .object({
          from: z.string('must be a cell id').min(1, 'must be a cell id'),
          to: z.string('must be a cell id').min(1, 'must be a cell id'),
          count: z.number('must be a number of buckets').int('must be a whole number of buckets').min(0, 'must be 0 or more'),
          ranges: z.array(
            z
              .tuple([bucket, bucket], 'must be a range [first, last]')
              .refine(([first, last]) => first <= last, { message: 'must have first ≤ last' }),
            'must be a list of bucket ranges',
          ),
        })
        .superRefine((move, ctx) => {
          if (move.from === move.to) ctx.addIssue({ code: 'custom', path: ['to'], message: `is the cell the buckets are in (${move.from})` });
          const buckets = move.ranges.reduce((sum, [first, last]) => sum + Math.max(0, last - first + 1), 0);
          if (buckets !== move.count)
            ctx.addIssue({ code: 'custom', path: ['count'], message: `is ${move.count}, but the ranges hold ${buckets} buckets` });
        }),
      'must be a list of moves',
    ),
  },
  'must be a plan object',
);
export type SavedPlan = z.infer<typeof savedPlanSchema>;

/** The most buckets one move takes: a plan's ranges are cut to this, so that progress shows and moves run side by side. */
export const CHUNK_BUCKETS = 1_024;

/** One bucket move of a plan. */
export interface PlanChunk {
  readonly from: string;
  readonly to: string;
  readonly first: number;
  readonly last: number;
}

export function planChunks(plan: SavedPlan): PlanChunk[] {
  const chunks: PlanChunk[] = [];
  for (const move of plan.moves) {
    for (const [first, last] of move.ranges) {
      for (let start = first; start <= last; start += CHUNK_BUCKETS) {
        chunks.push({ from: move.from, to: move.to, first: start, last: Math.min(last, start + CHUNK_BUCKETS - 1) });
      }
    }
  }
  return chunks;
}

/** Where an apply is. */
export interface ApplyProgress {
  readonly bucketsDone: number;
  readonly bucketsTotal: number;
  readonly movesDone: number;
  readonly movesTotal: number;
  readonly running: number;
  readonly recordsCopied: number;
  /** Records copied per second since this run started. */
  readonly rate: number;
  /** Seconds left at this run's bucket rate; undefined until a bucket is done. */
  readonly etaSeconds?: number;
  /** Moves that ended aborted or failed. */
  readonly failed: ReadonlyArray<{ moveId: string; subject: string; error?: string }>;
}

/** Starts (or makes sure of) the workflow that runs a move. */
export interface MoveRunner {
  start(move: MoveRecord): Promise<void>;
  /** The moves whose workflow runs now, where the runner can tell. */
  runningMoves?(): Promise<ReadonlySet<string>>;
}

export interface PlanRunnerDeps {
  readonly store: ControlPlaneStore;
  readonly engine: MoveEngine;
  readonly moves: MoveStore;
  readonly runner: MoveRunner;
  /** @default 2 */
  readonly concurrency?: number;
  readonly graceSeconds: number;
  readonly by: string;
  /** How often the moves' records are read. @default 500 ms */
  readonly pollMs?: number;
  readonly onProgress?: (progress: ApplyProgress) => void;
}

export class PlanRunner {
  constructor(private readonly deps: PlanRunnerDeps) {}

  /**
   * Runs the plan's moves, at most `concurrency` of them before their
   * flip, until all are done, or until `signal` pauses it: the moves
   * running then go on in the workflow, and running apply again picks
   * them up. A move that ends aborted or failed is reported and not
   * retried by this run.
   */
  async apply(plan: SavedPlan, signal?: AbortSignal): Promise<ApplyProgress & { paused: boolean }> {
    const chunks = planChunks(plan);
    const started = Date.now();
    const followed = new Map<PlanChunk, MoveRecord>();
    const copiedBefore = new Map<string, number>();
    const done = new Set<PlanChunk>();
    for (;;) {
      const { version } = await this.deps.store.readRouting();
      const map = version!.map;
      const running = (await this.deps.moves.list()).filter((m) => !FINISHED.has(m.state));
      for (const chunk of chunks) {
        if (!done.has(chunk) && range(chunk).every((bucket) => map[bucket] === chunk.to)) done.add(chunk);
        if (followed.has(chunk)) continue;
        const adopted = running.find((m) => m.kind === 'bucket' && m.to === chunk.to && m.buckets.some((b) => b >= chunk.first && b <= chunk.last));
        if (adopted) {
          copiedBefore.set(adopted.moveId, adopted.copied);
          followed.set(chunk, adopted);
          await this.deps.runner.start(adopted);
        }
      }
      const unflipped = [...followed.values()].filter((m) => !FINISHED.has(m.state) && m.flippedAt === undefined).length;
      const waiting = chunks.filter((chunk) => !done.has(chunk) && !followed.has(chunk));
      if (!signal?.aborted) {
        for (const chunk of waiting.slice(0, Math.max(0, (this.deps.concurrency ?? 2) - unflipped))) {
          const strays = range(chunk).filter((bucket) => map[bucket] !== chunk.to && map[bucket] !== chunk.from);
          if (strays.length) {
            throw new ControlPlaneError(
              `the plan is out of date: bucket ${strays[0]} is no longer in ${chunk.from} (map version ${version!.version}, plan from ${plan.basedOnVersion}); make a new plan`,
            );
          }
          const move = await this.deps.engine.create(
            { kind: 'bucket', first: chunk.first, last: chunk.last, to: chunk.to },
            { by: this.deps.by, graceSeconds: this.deps.graceSeconds },
          );
          copiedBefore.set(move.moveId, 0);
          followed.set(chunk, move);
          await this.deps.runner.start(move);
        }
      }
      for (const [chunk, move] of followed) {
        if (!FINISHED.has(move.state)) followed.set(chunk, (await this.deps.moves.get(move.moveId)) ?? move);
      }
      const moves = [...followed.values()];
      const size = (chunk: PlanChunk) => chunk.last - chunk.first + 1;
      const bucketsTotal = chunks.reduce((sum, c) => sum + size(c), 0);
      const bucketsDone = [...done].reduce((sum, c) => sum + size(c), 0);
      const recordsCopied = moves.reduce((sum, m) => sum + m.copied - (copiedBefore.get(m.moveId) ?? 0), 0);
      const seconds = Math.max((Date.now() - started) / 1_000, 0.001);
      const open = moves.filter((m) => !FINISHED.has(m.state));
      const progress: ApplyProgress = {
        bucketsDone,
        bucketsTotal,
        movesDone: moves.filter((m) => m.state === 'done').length + chunks.filter((c) => done.has(c) && !followed.has(c)).length,
        movesTotal: chunks.length,
        running: open.length,
        recordsCopied,
        rate: recordsCopied / seconds,
        ...(bucketsDone > 0 && { etaSeconds: Math.round(((bucketsTotal - bucketsDone) * seconds) / bucketsDone) }),
        failed: moves
          .filter((m) => m.state === 'aborted' || m.state === 'failed' || m.state === 'reverted')
          .map((m) => ({
            moveId: m.moveId,
            subject: m.subject,
            ...(m.error ? { error: m.error } : m.revertedBy && { error: `reverted by move ${m.revertedBy}` }),
          })),
      };
      this.deps.onProgress?.(progress);
      // Nothing running and nothing left to start: every chunk is done or its move ended without flipping.
      const stuck = open.length === 0 && chunks.every((c) => done.has(c) || (followed.has(c) && followed.get(c)!.state !== 'done'));
      if (signal?.aborted || (bucketsDone === bucketsTotal && open.length === 0) || stuck) {
        return { ...progress, paused: Boolean(signal?.aborted) && bucketsDone < bucketsTotal };
      }
      await sleep(this.deps.pollMs ?? 500);
    }
  }

  /** Asks every running move of the plan that has not flipped to abort; the workflow undoes them. */
  async abort(plan: SavedPlan): Promise<MoveRecord[]> {
    const chunks = planChunks(plan);
    const running = (await this.deps.moves.list()).filter((m) => !FINISHED.has(m.state) && m.kind === 'bucket');
    const ours = running.filter((m) => chunks.some((c) => c.to === m.to && m.buckets.some((b) => b >= c.first && b <= c.last)));
    const aborted: MoveRecord[] = [];
    for (const move of ours) {
      if (await this.deps.moves.requestAbort(move.moveId)) {
        aborted.push(move);
        await this.deps.runner.start(move);
      }
    }
    return aborted;
  }
}

function range(chunk: PlanChunk): number[] {
  return Array.from({ length: chunk.last - chunk.first + 1 }, (_, i) => chunk.first + i);
}
