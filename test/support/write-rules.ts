import { COPY_MARKER } from '@item-master/shared';

/** An update as DynamoDB takes it (UpdateItem, or a transaction's Update). */
export interface UpdateRequest {
  readonly UpdateExpression?: unknown;
  readonly ExpressionAttributeNames?: unknown;
}

/**
 * What an update of a cell-table record breaks of the record's invariants,
 * in words (empty when none): every write other than a move's copy sets
 * `updatedAt` and removes the copy marker.
 */
export function recordWriteFaults(update: UpdateRequest): string[] {
  const expression = String(update.UpdateExpression ?? '');
  const names = (update.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const resolve = (token: string) => (token.startsWith('#') ? names[token] : token);
  // Clauses: SET, REMOVE, ADD, DELETE, each up to the next keyword.
  const clauses = new Map<string, string>();
  for (const match of expression.matchAll(/\b(SET|REMOVE|ADD|DELETE)\b([\s\S]*?)(?=\b(?:SET|REMOVE|ADD|DELETE)\b|$)/g)) {
    clauses.set(match[1]!, `${clauses.get(match[1]!) ?? ''} ${match[2]!}`);
  }
  const assigned = (clauses.get('SET') ?? '').split(',').map((part) => resolve(part.split('=')[0]!.trim()));
  const removed = (clauses.get('REMOVE') ?? '').split(',').map((part) => resolve(part.trim()));
  const faults: string[] = [];
  if (!assigned.includes('updatedAt')) faults.push(`does not set updatedAt: ${expression}`);
  if (!removed.includes(COPY_MARKER)) faults.push(`does not remove ${COPY_MARKER}: ${expression}`);
  return faults;
}
