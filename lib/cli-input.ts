/**
 * What the command-line tools (cells, console, deploy, start, token, bench)
 * take from their users, checked the same way everywhere: options parsed by
 * node:util's parseArgs, whole numbers that are whole numbers, and user input
 * shown back escaped and shortened. No CDK here: the tools load it only to
 * synthesize.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { escapeControls, shown } from '../layers/shared/src/shown.ts';

export { escapeControls, shown };

/** Bad input on the command line: one line for the user, and exit code 2. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** Digits only: no sign, space, hex, exponent or fraction; empty text is no number. */
const WHOLE_NUMBER = /^\d+$/;

/**
 * A whole number given as text, refused unless it is written as one: `''`,
 * `' 5'`, `0x10`, `1e3` and `2.5` are each refused, naming `what` (an option
 * such as `--grace`, or a config key).
 */
export function wholeNumber(what: string, text: string, range: { min: number; max?: number }): number {
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const bounds = range.max === undefined ? `of at least ${range.min}` : `from ${range.min} to ${range.max}`;
  const value = Number(text);
  if (!WHOLE_NUMBER.test(text) || value < range.min || value > max)
    throw new InputError(`${what} must be a whole number ${bounds}, not ${shown(text)}`);
  return value;
}

/** A TCP port: 0 (any free one) to 65535. */
export function portNumber(what: string, text: string): number {
  return wholeNumber(what, text, { min: 0, max: 65_535 });
}

/** Edit distance (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** The candidate closest to `word`, when one is close enough to be a typo of it. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const scored = candidates.map((candidate) => ({ candidate, d: distance(word.toLowerCase(), candidate.toLowerCase()) }));
  const best = scored.sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(2, Math.floor(best.candidate.length / 3)) ? best.candidate : undefined;
}

/** Marks a negative number so that parseArgs takes it for a value, not an option. */
const NEGATIVE = /^-\d/;
const MARK = '\u0000';

/**
 * parseArgs, strict, with what it gets wrong for users put right: a
 * negative number (`-1`, `--grace -5`) is a value or a positional, for the
 * command to refuse by its own rule, not an unknown option; and its errors
 * become one InputError line.
 */
export function parseCommandLine<const T extends Omit<ParseArgsConfig, 'args' | 'strict'>>(argv: readonly string[], config: T) {
  const options = (config.options ?? {}) as Record<string, { type: string }>;
  const args: string[] = [];
  for (const arg of argv) {
    const last = args.at(-1) ?? '';
    if (!NEGATIVE.test(arg)) args.push(arg);
    // `--grace -5`: the option's value, as `--grace=-5` would give it.
    else if (/^--[^=]+$/.test(last) && options[last.slice(2)]?.type === 'string') args[args.length - 1] = `${last}=${arg}`;
    else args.push(`${MARK}${arg}`);
  }
  try {
    const parsed = parseArgs({ ...config, args, strict: true } as ParseArgsConfig);
    return { values: parsed.values, positionals: parsed.positionals.map((p) => (p.startsWith(MARK) ? p.slice(1) : p)) } as unknown as {
      values: ReturnType<typeof parseArgs<T & { args: string[]; strict: true }>>['values'];
      positionals: string[];
    };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
      throw new InputError(parseArgsMessage((error as Error).message.replaceAll(MARK, '')));
    throw error;
  }
}

/** parseArgs's messages, shorter and with the input shown safely. */
function parseArgsMessage(message: string): string {
  const unknown = /^Unknown option '(.*?)'(?:\. |$)/.exec(message);
  if (unknown) return `unknown option ${shown(unknown[1]!)}`;
  const missing = /^Option '(.+?)' argument missing/.exec(message);
  if (missing) return `${missing[1]!.replace(/^-\w, /, '')} needs a value`;
  const unexpected = /^Unexpected argument '(.*?)'(?:\. |$)/.exec(message);
  if (unexpected) return `unexpected argument ${shown(unexpected[1]!)}`;
  return message.split('\n')[0]!.replace(/\. To specify.*$/, '');
}
