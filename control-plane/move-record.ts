/**
 * A move's record in the control plane's table: its steps, its states and
 * the schema every reader parses it with (the engine, the CLI, the console).
 * The engine that takes it a step at a time: move-engine.ts; where it is
 * kept: move-store.ts.
 */
import * as z from 'zod';

export const MOVE_PK = 'MOVE';

/** The steps as an operator sees them, in order. */
export const MOVE_STEPS = ['clone', 'catch up', 'fence', 'final catch up', 'verify', 'flip', 'forget'] as const;
export type MoveStep = (typeof MOVE_STEPS)[number];

/** Where a move is: the step it runs next, or how it ended. */
export const MOVE_STATES = ['clone', 'catch up', 'fence', 'final', 'forget', 'done', 'aborted', 'failed', 'reverted'] as const;
export type MoveState = (typeof MOVE_STATES)[number];
export const FINISHED: ReadonlySet<MoveState> = new Set(['done', 'aborted', 'failed', 'reverted']);

const stepTimesSchema = z.object({ startedAt: z.number(), endedAt: z.number().optional() });

export const moveRecordSchema = z.object({
  moveId: z.string(),
  kind: z.enum(['tenant', 'bucket']),
  /** The tenant, or the bucket range as given (`5` or `5-9`). */
  subject: z.string(),
  buckets: z.array(z.number().int()),
  /** The tenants moving (for a bucket move, those the source's directory records, found again at each pass until the fence). */
  tenants: z.array(z.string()),
  from: z.string(),
  to: z.string(),
  state: z.enum(MOVE_STATES),
  steps: z.record(z.string(), stepTimesSchema).default({}),
  /**
   * Where the clone (or the catch-up's pass) goes on: the next tenant not
   * begun (its index in `tenants`), and the ranges of keys under way, each
   * from after its last key done up to `upTo` (inclusive; the tenant's end
   * when absent). A record saved with `lastKey` alone has that tenant under
   * way as one range.
   */
  checkpoint: z
    .object({
      tenant: z.number().int(),
      lastKey: z.record(z.string(), z.unknown()).optional(),
      segments: z
        .array(z.object({ tenant: z.number().int(), after: z.record(z.string(), z.unknown()).optional(), upTo: z.string().optional() }))
        .optional(),
    })
    .optional(),
  /** Records written into the target (clone and catch-ups). */
  copied: z.number().int().default(0),
  fenceAt: z.number().optional(),
  fenceAttempts: z.number().int().default(0),
  flippedAt: z.number().optional(),
  /** From the fence to the flip: how long the moving tenants' writes were refused. */
  fencedMs: z.number().optional(),
  mapVersion: z.number().int().optional(),
  verified: z.object({ records: z.number().int(), checksum: z.string() }).optional(),
  /** From when every write of the moving tenants is in the source's change journal (the markers' time plus JOURNAL_SETTLE_MS). */
  journalFrom: z.number().optional(),
  /** What the catch-ups from the journal read: passes, changes (journal entries) and records read to copy and check them. */
  delta: z.object({ passes: z.number().int(), changes: z.number().int(), reads: z.number().int() }).optional(),
  /** Records read and written inside the fence (from the fence to the flip): what the fenced window's length follows. */
  fenced: z.object({ changes: z.number().int(), reads: z.number().int() }).optional(),
  /** What the target's journal copied back to the source between the flip and forget: passes, changes and records read. */
  returned: z.object({ passes: z.number().int(), changes: z.number().int(), reads: z.number().int() }).optional(),
  graceSeconds: z.number().nonnegative(),
  forgetAt: z.number().optional(),
  /** Forget has begun removing the source's copy: the move can no longer be reverted. */
  forgetting: z.boolean().optional(),
  /** An abort or failure under way (before the flip): how the move ends once the target's copy is removed. */
  ending: z.object({ state: z.enum(['aborted', 'failed']), reason: z.string().optional() }).optional(),
  /** When forget (or an abort) took a journaling marker away: the journal is cleared once no cell API instance can still write to it. */
  unmarkedAt: z.number().optional(),
  /** The move this one reverts: it takes the tenants back the way they came, from a source copy kept current. */
  revertOf: z.string().optional(),
  /** The move that reverts this one (set by `revert`, with the revert's record, in one transaction). */
  revertedBy: z.string().optional(),
  abortRequested: z.boolean().optional(),
  error: z.string().optional(),
  by: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type MoveRecord = z.infer<typeof moveRecordSchema>;

/** What the workflow does after a step: step again, wait first, or stop. */
export type StepOutcome = { next: 'continue' } | { next: 'wait'; seconds: number } | { next: 'done'; state: MoveState };

/** A move the operator asked for. */
export type MoveRequest = { kind: 'tenant'; tenantId: string; to: string } | { kind: 'bucket'; first: number; last: number; to: string };
