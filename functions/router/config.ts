import * as z from 'zod';

const cellFunctionsSchema = z
  .record(z.string().min(1), z.string().min(1))
  .refine((cells) => Object.keys(cells).length > 0, 'at least one cell');

export interface RouterConfig {
  /** The cells in bucket-map order. */
  readonly cellIds: readonly string[];
  readonly cellFunctions: Readonly<Record<string, string>>;
}

/**
 * `CELL_FUNCTIONS` is a JSON object `{ cellId: functionName }` in the order
 * the cells are configured; that order fixes the bucket map.
 */
export function loadRouterConfig(env: NodeJS.ProcessEnv): RouterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(env.CELL_FUNCTIONS ?? '');
  } catch {
    throw new Error('CELL_FUNCTIONS must be a JSON object of cellId → function name');
  }
  const cellFunctions = cellFunctionsSchema.parse(raw);
  return { cellIds: Object.keys(cellFunctions), cellFunctions };
}
