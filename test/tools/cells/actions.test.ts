import { describe, expect, it } from 'vitest';
import { runningMoves } from '../../../tools/cells/actions.ts';

describe('which moves a workflow runs, as the cells CLI lists them', () => {
  it('asks the runner, and says why it cannot tell when Step Functions fails instead of failing the listing', async () => {
    const start = async () => undefined;
    expect(await runningMoves({ start, runningMoves: async () => new Set(['m-1']) })).toEqual({ running: new Set(['m-1']) });
    expect(await runningMoves({ start, runningMoves: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:4000')) })).toEqual({
      unknown: 'connect ECONNREFUSED 127.0.0.1:4000',
    });
    // A runner that cannot tell (no workflow, or a fake): nothing is marked.
    expect(await runningMoves({ start })).toEqual({});
    expect(await runningMoves(undefined)).toEqual({});
  });
});
