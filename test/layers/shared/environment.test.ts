import * as z from 'zod';
import { describe, expect, it } from 'vitest';
import { parseEnvironment, requiredVariables } from '../../../layers/shared/src/environment.ts';

describe('parseEnvironment', () => {
  const schema = z.object({ TABLE_NAME: z.string().min(1), RETRIES: z.coerce.number().int().default(3) });

  it('returns the parsed environment, defaults and coercions applied', () => {
    expect(parseEnvironment('cell API', schema, { TABLE_NAME: 't', RETRIES: '5' })).toEqual({ TABLE_NAME: 't', RETRIES: 5 });
    expect(parseEnvironment('cell API', schema, { TABLE_NAME: 't' })).toEqual({ TABLE_NAME: 't', RETRIES: 3 });
  });

  it('reads variables that only need to be set without zod, failing the same way', () => {
    const plain = requiredVariables('TABLE_NAME', 'CALLBACK_URL');
    expect(parseEnvironment('publisher', plain, { TABLE_NAME: 't', CALLBACK_URL: 'https://x', OTHER: 'y' })).toEqual({
      TABLE_NAME: 't',
      CALLBACK_URL: 'https://x',
    });
    expect(() => parseEnvironment('publisher', plain, { CALLBACK_URL: '' })).toThrow(
      'publisher environment: TABLE_NAME: must be set; CALLBACK_URL: must be set',
    );
  });

  it('fails in one line that names the function and every wrong variable', () => {
    expect(() => parseEnvironment('cell API', schema, { RETRIES: 'many' })).toThrow(/^cell API environment: TABLE_NAME: .+; RETRIES: .+$/);
  });
});
