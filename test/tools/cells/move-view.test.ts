import { describe, expect, it } from 'vitest';
import { forgetTime, revertible, seconds, stateOf, summary } from '../../../tools/cells/move-view.ts';
import type { MoveRecord } from '../../../control-plane/move-record.ts';

const at = Date.parse('2026-12-07T10:00:00.000Z');
const move = (fields: Partial<MoveRecord>): MoveRecord => ({
  moveId: 'm-1',
  kind: 'tenant',
  subject: 'acme',
  buckets: [],
  tenants: ['acme'],
  from: 'cell-1',
  to: 'cell-2',
  state: 'forget',
  steps: {},
  copied: 12,
  fenceAttempts: 0,
  graceSeconds: 300,
  by: 'test',
  createdAt: at - 10_000,
  updatedAt: at,
  ...fields,
});

describe('how the cells CLI shows a move', () => {
  it('ends a flipped move with when the workflow forgets the source’s copy', () => {
    const flipped = move({ mapVersion: 7, fencedMs: 412, forgetAt: at + 300_000 });
    expect(forgetTime(flipped, at)).toBe('2026-12-07 10:05:00 UTC (in 5 min 0 s)');
    expect(summary(flipped)).toMatch(
      /^moved tenant acme from cell-1 to cell-2: map version 7, writes refused for 412 ms\. cell-1 keeps its copy, kept current, until 2026-12-07 10:05:00 UTC \(in .+\), then the control plane's workflow forgets it; until then npm run cells -- move --revert m-1 takes it back$/,
    );
  });

  it('rounds a duration once: never 60 s in a minute', () => {
    expect(seconds(299_600)).toBe('5 min 0 s');
    expect(seconds(299_400)).toBe('4 min 59 s');
    expect(seconds(119_999)).toBe('120.0 s');
    expect(seconds(999)).toBe('999 ms');
  });

  it('lists a flipped move as revertible until it forgets, and any other by its state', () => {
    expect(stateOf(move({ forgetAt: at + 90_000 }), at)).toBe('flipped; revertible until 2026-12-07 10:01:30 UTC (in 90.0 s)');
    expect(revertible(move({ forgetAt: at + 90_000 }))).toBe(true);
    expect(stateOf(move({ forgetAt: at, forgetting: true }), at)).toBe("forgetting the source's copy");
    expect(stateOf(move({ forgetAt: at, revertedBy: 'm-2' }), at)).toBe('being reverted by m-2');
    for (const fields of [{ forgetting: true }, { revertedBy: 'm-2' }, { state: 'done' as const }, { state: 'catch up' as const }])
      expect(revertible(move(fields))).toBe(false);
    expect(stateOf(move({ state: 'catch up' }), at)).toBe('catch up');
    expect(stateOf(move({ state: 'catch up', revertOf: 'm-0' }), at)).toBe('catch up (reverting m-0)');
    expect(stateOf(move({ state: 'done' }), at)).toBe('done');
    expect(summary(move({ state: 'reverted', revertedBy: 'm-2' }))).toBe('reverted by move m-2: tenant acme goes back to cell-1');
  });

  it('says when no workflow runs a move that has not finished, and never of a finished one', () => {
    expect(stateOf(move({ state: 'catch up' }), at, false)).toBe('catch up; stopped: no workflow runs it');
    expect(stateOf(move({ state: 'catch up' }), at, true)).toBe('catch up');
    expect(stateOf(move({ state: 'forget', forgetAt: at + 60_000 }), at, false)).toMatch(
      /^flipped; revertible until .*; stopped: no workflow runs it$/,
    );
    for (const state of ['done', 'aborted', 'failed', 'reverted'] as const) expect(stateOf(move({ state }), at, false)).toBe(state);
  });
});
