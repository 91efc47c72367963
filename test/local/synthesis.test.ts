import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildTestApp } from '../support/synth.ts';

afterEach(() => vi.restoreAllMocks());

describe('synthesis for the local runtime and the tests', () => {
  it('prints nothing a user cannot act on: no bundling line per function, no certificate warning or report', () => {
    const printed: string[] = [];
    const collect = (chunk: unknown) => {
      printed.push(String(chunk));
      return true;
    };
    vi.spyOn(process.stderr, 'write').mockImplementation(collect as typeof process.stderr.write);
    vi.spyOn(process.stdout, 'write').mockImplementation(collect as typeof process.stdout.write);
    for (const method of ['log', 'warn', 'error', 'info'] as const)
      vi.spyOn(console, method).mockImplementation((...args) => void collect(args.join(' ')));
    const built = buildTestApp({ cells: 'cell-1' });
    try {
      built.app.synth();
    } finally {
      vi.restoreAllMocks();
      built.cleanup();
    }
    expect(printed.filter((line) => /Bundling asset|certificateArn|validation-report/.test(line))).toEqual([]);
  });
});
