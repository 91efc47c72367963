import { tenantIdOf } from '../layers/shared/src/ids.ts';

/** A request the front door answered. */
export interface AnsweredRequest {
  readonly method: string;
  readonly path: string;
  readonly statusCode: number;
  readonly ms: number;
  /** The cell that answered (`x-cell-id`); none for the router's own answers. */
  readonly cellId?: string;
}

const clock = (at: Date) => at.toTimeString().slice(0, 8);

/** One line per request, as `npm start` prints it: time, method, path, status, ms, cell and tenant. */
export function requestLine(answer: AnsweredRequest, at = new Date()): string {
  const tenant = tenantIdOf(answer.path);
  const status = answer.statusCode >= 500 ? `${answer.statusCode} !` : String(answer.statusCode);
  return [clock(at), answer.method.padEnd(6), answer.path, status, `${Math.round(answer.ms)} ms`, answer.cellId ?? '-', tenant ?? '-'].join(' ');
}

/**
 * A line a function printed (`[name] text`), as `npm start` shows it: an
 * EMF metrics line only when `verbose`; a Powertools log line as its level,
 * message and other keys, with warnings and errors marked; anything else as
 * it came. Undefined for a line not to show.
 */
export function functionLine(line: string, options: { verbose: boolean }): string | undefined {
  const match = /^\[([^\]]+)\] (.*)$/s.exec(line);
  if (!match) return line;
  const [, name, text] = match as unknown as [string, string, string];
  const json = parseObject(text);
  if (!json) return line;
  if (typeof json._aws === 'object' && json._aws !== null) return options.verbose ? line : undefined;
  if (typeof json.level !== 'string' || typeof json.message !== 'string') return line;
  const {
    level,
    message,
    timestamp: _t,
    service: _s,
    sampling_rate: _r,
    xray_trace_id: _x,
    cold_start: _c,
    function_name: _f,
    function_memory_size: _m,
    function_arn: _a,
    function_request_id: _q,
    ...rest
  } = json;
  const mark = level === 'ERROR' || level === 'CRITICAL' ? '! ' : level === 'WARN' ? '~ ' : '  ';
  const keys = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${mark}[${name}] ${level} ${message}${keys ? `  ${keys}` : ''}`;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
