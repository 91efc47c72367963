import { describe, expect, it } from 'vitest';
import { forgetTime, seconds, stateOf, summary } from '../../control-plane/move-view.ts';
import type { MoveRecord } from '../../control-plane/moves.ts';

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
      /^moved tenant acme from cell-1 to cell-2: map version 7, writes refused for 412 ms\. cell-1 keeps its copy until 2026-12-07 10:05:00 UTC \(in .+\), then the control plane's workflow forgets it \(npm run cells -- moves shows it\)$/,
    );
  });

  it('rounds a duration once: never 60 s in a minute', () => {
    expect(seconds(299_600)).toBe('5 min 0 s');
    expect(seconds(299_400)).toBe('4 min 59 s');
    expect(seconds(119_999)).toBe('120.0 s');
    expect(seconds(999)).toBe('999 ms');
  });

  it('lists a flipped move as waiting to forget, and any other by its state', () => {
    expect(stateOf(move({ forgetAt: at + 90_000 }), at)).toBe('flipped; forgets at 2026-12-07 10:01:30 UTC (in 90.0 s)');
    expect(stateOf(move({ state: 'catch up' }), at)).toBe('catch up');
    expect(stateOf(move({ state: 'done' }), at)).toBe('done');
  });
});
