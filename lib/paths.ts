import path from 'node:path';

/** The repository root: asset paths are resolved from it, wherever synthesis is started. */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..');

export function fromRoot(...parts: string[]): string {
  return path.join(REPO_ROOT, ...parts);
}
