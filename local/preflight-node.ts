/**
 * The first module `npm start` evaluates: a Node outside package.json's
 * `engines` stops here, in one line, before any module that may need a newer
 * Node runs.
 */
import { PrerequisiteError, requireNode } from './prerequisites.ts';

try {
  requireNode();
} catch (error) {
  if (!(error instanceof PrerequisiteError)) throw error;
  console.error(`npm start: ${error.message}`);
  process.exit(1);
}
