import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { midSortKey } from '../../control-plane/cell-data.ts';

describe('where a range of sort keys splits', () => {
  it('gives a key strictly between any two ASCII keys, or none', () => {
    const key = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 24 });
    fc.assert(
      fc.property(key, key, (a, b) => {
        fc.pre(a !== b);
        const [low, high] = a < b ? [a, b] : [b, a];
        const mid = midSortKey(low, high);
        if (mid !== undefined)
          expect(low < mid && mid < high, `${JSON.stringify(low)} < ${JSON.stringify(mid)} < ${JSON.stringify(high)}`).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('splits the keys of a tenant near their middle', () => {
    expect(midSortKey('ITEM#i-000100', 'ITEM#i-999999')).toBe('ITEM#i-4');
    expect(midSortKey('ITEM#zz', 'ORDER#o-1')! > 'ITEM#zz').toBe(true);
    // Neighbours in the alphabet: the key goes on past the lower one.
    expect(midSortKey('ITEM#a', 'ITEM#b')).toBe('ITEM#aO');
    expect(midSortKey('ITEM#a', 'ITEM#a')).toBeUndefined();
  });
});
