import { describe, expect, it } from 'vitest';
import { closest, InputError, parseCommandLine, portNumber, shown, wholeNumber } from '../../lib/cli-input.ts';
import { runTool } from '../support/processes.ts';

describe('wholeNumber', () => {
  it.each(['', ' ', ' 5', '5 ', '0x10', '0b1', '0o7', '1e3', '2.5', '.5', '-5', '+5', '5n', 'Infinity', 'NaN', '١٢'])(
    'refuses %j, naming the option',
    (text) => {
      expect(() => wholeNumber('--grace', text, { min: 0 })).toThrow(
        new InputError(`--grace must be a whole number of at least 0, not ${JSON.stringify(text)}`),
      );
    },
  );

  it('takes digits within the range, and refuses what is outside it', () => {
    expect(wholeNumber('--limit', '007', { min: 1, max: 10 })).toBe(7);
    expect(wholeNumber('--limit', '0', { min: 0 })).toBe(0);
    expect(() => wholeNumber('--limit', '11', { min: 1, max: 10 })).toThrow('--limit must be a whole number from 1 to 10, not "11"');
    expect(() => portNumber('--port', '65536')).toThrow('--port must be a whole number from 0 to 65535, not "65536"');
    expect(portNumber('--port', '0')).toBe(0);
  });
});

describe('shown', () => {
  it('escapes terminal control characters and shortens long input', () => {
    expect(shown('\u001b[31mred\u0007')).toBe('"\\u001b[31mred\\u0007"');
    expect(shown('a\nb\u009b\u202e')).toBe('"a\\nb\\u009b\\u202e"');
    expect(shown('x'.repeat(100_000))).toBe(`"${'x'.repeat(64)}…" (100,000 characters)`);
    expect(shown('acme')).toBe('"acme"');
  });
});

describe('closest', () => {
  it('names the key a typo meant, and nothing for a word unlike any', () => {
    const keys = ['bakeMinutes', 'canaryCell', 'cells', 'stage'];
    expect(closest('bakeMinute', keys)).toBe('bakeMinutes');
    expect(closest('canarycell', keys)).toBe('canaryCell');
    expect(closest('stag', keys)).toBe('stage');
    expect(closest('zebra', keys)).toBeUndefined();
  });
});

describe('parseCommandLine', () => {
  const options = { grace: { type: 'string' }, local: { type: 'boolean' } } as const;

  it('takes a negative number for a positional or an option value, for the command to refuse by its own rule', () => {
    expect(parseCommandLine(['move', 'bucket', '-1', 'cell-2', '--grace', '-5', '--local'], { options, allowPositionals: true })).toEqual({
      values: { grace: '-5', local: true },
      positionals: ['move', 'bucket', '-1', 'cell-2'],
    });
  });

  it('turns parseArgs errors into one InputError line, with the input escaped', () => {
    expect(() => parseCommandLine(['--nope\u001b'], { options })).toThrow(new InputError('unknown option "--nope\\u001b"'));
    expect(() => parseCommandLine(['--grace'], { options })).toThrow(new InputError('--grace <value> needs a value'));
    expect(() => parseCommandLine(['extra'], { options })).toThrow(new InputError('unexpected argument "extra"'));
    expect(() => parseCommandLine(['-1'], { options })).toThrow(new InputError('unexpected argument "-1"'));
  });
});

// No credentials anywhere: a run that reached AWS would say so instead.
const tool = (script: string, args: string[]) =>
  runTool(script, args, { PATH: process.env.PATH, HOME: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true' });

describe('every tool refuses a number that is none, in one line with exit code 2, before doing anything', () => {
  it.each([
    ['local/cli.ts', ['--port', ''], 'npm start: --port must be a whole number from 0 to 65535, not "" (npm start -- --help lists the options)'],
    [
      'local/cli.ts',
      ['--ws-port', '0x10'],
      'npm start: --ws-port must be a whole number from 0 to 65535, not "0x10" (npm start -- --help lists the options)',
    ],
    [
      'local/cli.ts',
      ['--max-instances', '1e1'],
      'npm start: --max-instances must be a whole number of at least 1, not "1e1" (npm start -- --help lists the options)',
    ],
    ['local/cli.ts', ['--bogus'], 'npm start: unknown option "--bogus" (npm start -- --help lists the options)'],
    [
      'tools/console/cli.ts',
      ['--port', ' 80'],
      'npm run console: --port must be a whole number from 0 to 65535, not " 80" (npm run console -- --help lists the options)',
    ],
    [
      'tools/console/cli.ts',
      ['--port', '1.5'],
      'npm run console: --port must be a whole number from 0 to 65535, not "1.5" (npm run console -- --help lists the options)',
    ],
    ['local/token.ts', ['--tenant', 'acme', '--expires', ''], 'error: --expires must be a whole number of at least 1, not ""'],
    [
      'local/token.ts',
      ['--tenant', '\u001b]0;x\u0007'],
      'error: --tenant "\\u001b]0;x\\u0007" must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_" or "-"',
    ],
    [
      'bench/index.ts',
      ['--max-instances', '-1'],
      'npm run bench: --max-instances must be a whole number of at least 1, not "-1" (npm run bench -- --help lists the options)',
    ],
    // A report place that cannot be one is refused before minutes of measuring, not after.
    [
      'bench/index.ts',
      ['--out', 'package.json'],
      'npm run bench: --out must be a directory the bench can write into, not "package.json" (EEXIST) (npm run bench -- --help lists the options)',
    ],
    [
      'tools/deploy/cli.ts',
      ['--dry-run', '-c', 'bakeMinutes='],
      'npm run deploy: invalid configuration: bakeMinutes: must be a whole number of minutes, not ""',
    ],
  ] as Array<[string, string[], string]>)('%s %j', async (script, args, line) => {
    expect(await tool(script, args)).toEqual({ code: 2, stdout: '', stderr: `${line}\n` });
  });
});
