/** How the `cells` CLI shows moves: step lines as a move goes on, a summary, an apply's progress bar. */
import type { ApplyProgress } from '../../control-plane/apply.ts';
import { FINISHED, MOVE_STEPS, type MoveRecord } from '../../control-plane/move-record.ts';

export function seconds(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1_000).toFixed(1)} s`;
  // Rounded once, so that 4 min 59.6 s reads 5 min 0 s, never 4 min 60 s.
  const whole = Math.round(ms / 1_000);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

/** What a move moves, in words: `tenant acme` or `buckets 5-9 (12 tenants)`. */
export function subjectOf(move: Pick<MoveRecord, 'kind' | 'subject' | 'tenants'>): string {
  if (move.kind === 'tenant') return `tenant ${move.subject}`;
  return `bucket${move.subject.includes('-') ? 's' : ''} ${move.subject} (${move.tenants.length} tenant${move.tenants.length === 1 ? '' : 's'})`;
}

/** The lines a follower prints between two reads of a move's record: each step as it starts and as it ends. */
export function stepLines(before: MoveRecord | undefined, now: MoveRecord): string[] {
  const lines: string[] = [];
  for (const step of MOVE_STEPS) {
    const was = before?.steps[step];
    const is = now.steps[step];
    if (!is) continue;
    if (!was) lines.push(`  ▸ ${step}${startNote(step, now)}`);
    if (is.endedAt !== undefined && was?.endedAt === undefined)
      lines.push(`  ✓ ${step.padEnd(15)} ${seconds(is.endedAt - is.startedAt).padStart(9)}${endNote(step, now)}`);
  }
  if (now.state === 'clone' && before?.state === 'clone' && now.copied !== before.copied)
    lines.push(`    ${now.copied.toLocaleString('en')} records copied`);
  return lines;
}

function startNote(step: (typeof MOVE_STEPS)[number], move: MoveRecord): string {
  if (step === 'fence' && move.fenceAt !== undefined)
    return `: writes refused from ${new Date(move.fenceAt).toISOString().slice(11, 23)} (announced ahead to every cell API instance)`;
  if (step === 'forget' && move.forgetAt !== undefined) return `: the source keeps its copy for the ${move.graceSeconds} s grace period`;
  return '';
}

function endNote(step: (typeof MOVE_STEPS)[number], move: MoveRecord): string {
  if (step === 'clone' || step === 'final catch up') return `  ${move.copied.toLocaleString('en')} records copied in all`;
  if (step === 'verify' && move.verified) {
    const n = move.verified.records;
    return `  ${n.toLocaleString('en')} record${n === 1 ? '' : 's'} written since the catch-up match${n === 1 ? 'es' : ''}, record by record`;
  }
  if (step === 'catch up') return `  ${move.copied.toLocaleString('en')} records copied in all; every record checked`;
  if (step === 'flip' && move.mapVersion !== undefined)
    return `  map version ${move.mapVersion}; writes were refused for ${seconds(move.fencedMs ?? 0)}`;
  return '';
}

/** The last line of a move. */
export function summary(move: MoveRecord): string {
  const what = subjectOf(move);
  switch (move.state) {
    case 'done':
      return `moved ${what} from ${move.from} to ${move.to} in ${seconds((move.steps.forget?.endedAt ?? move.updatedAt) - move.createdAt)}: map version ${move.mapVersion}, writes refused for ${seconds(move.fencedMs ?? 0)}`;
    case 'forget':
      return (
        `moved ${what} from ${move.from} to ${move.to}: map version ${move.mapVersion}, writes refused for ${seconds(move.fencedMs ?? 0)}. ` +
        `${move.from} keeps its copy, kept current, until ${forgetTime(move)}, then the control plane's workflow forgets it; ` +
        `until then npm run cells -- move --revert ${move.moveId} takes ${move.kind === 'tenant' ? 'it' : 'them'} back`
      );
    case 'reverted':
      return `reverted by move ${move.revertedBy ?? 'unknown'}: ${what} go${move.kind === 'tenant' ? 'es' : ''} back to ${move.from}`;
    case 'aborted':
      return `aborted: ${move.from} still serves ${what}, as it was; ${move.to}'s copy is removed`;
    case 'failed':
      return `failed (${move.error ?? 'unknown'}): ${move.from} still serves ${what}, as it was`;
    default:
      return `${what}: ${move.state}`;
  }
}

/** When a flipped move's source copy is forgotten, in UTC, and how far off that is. */
export function forgetTime(move: Pick<MoveRecord, 'forgetAt'>, now = Date.now()): string {
  if (move.forgetAt === undefined) return 'its grace period ends';
  const at = new Date(move.forgetAt).toISOString().slice(0, 19).replace('T', ' ');
  return `${at} UTC (in ${seconds(Math.max(0, move.forgetAt - now))})`;
}

/** A move's state for a listing: a flipped move says until when it can be reverted, a revert which move it reverts. */
export function stateOf(
  move: Pick<MoveRecord, 'state' | 'forgetAt' | 'forgetting' | 'revertedBy' | 'revertOf'>,
  now = Date.now(),
  workflowRunning = true,
): string {
  const state = describedState(move, now);
  // A move whose workflow gave up (its retries spent) stays where it stopped until someone starts it again.
  return workflowRunning || FINISHED.has(move.state) ? state : `${state}; stopped: no workflow runs it`;
}

function describedState(move: Pick<MoveRecord, 'state' | 'forgetAt' | 'forgetting' | 'revertedBy' | 'revertOf'>, now: number): string {
  const state = move.revertOf && !['done', 'forget'].includes(move.state) ? `${move.state} (reverting ${move.revertOf})` : move.state;
  if (move.state !== 'forget') return state;
  if (move.revertedBy) return `being reverted by ${move.revertedBy}`;
  if (move.forgetting) return `forgetting the source's copy`;
  return `flipped; revertible until ${forgetTime(move, now)}`;
}

/** Whether a revert would be taken now: the move flipped and waits to forget, unclaimed. */
export function revertible(move: Pick<MoveRecord, 'state' | 'forgetting' | 'revertedBy'>): boolean {
  return move.state === 'forget' && !move.forgetting && !move.revertedBy;
}

/** `[#######.......] 1,024/4,096 buckets · 3 running · 12,345 records · 1,234 rec/s · ETA 2 min 3 s` */
export function progressBar(progress: ApplyProgress, width = 24): string {
  const filled = progress.bucketsTotal === 0 ? width : Math.round((progress.bucketsDone / progress.bucketsTotal) * width);
  const eta = progress.etaSeconds === undefined ? 'ETA …' : `ETA ${seconds(progress.etaSeconds * 1_000)}`;
  return [
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progress.bucketsDone.toLocaleString('en')}/${progress.bucketsTotal.toLocaleString('en')} buckets`,
    `${progress.running} running`,
    `${progress.recordsCopied.toLocaleString('en')} records`,
    `${Math.round(progress.rate).toLocaleString('en')} rec/s`,
    eta,
  ].join(' · ');
}
