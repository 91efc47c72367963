// @ts-check
import config from './stryker.config.mjs';

/**
 * `npm run mutate:moves`: mutation testing of the migration code,
 * `control-plane/move-engine.ts`, `move-store.ts` and `move-record.ts`, apart from the other core modules: it runs its own
 * suites (vitest.mutate-moves.config.ts) and keeps its own incremental file
 * and report (docs/quality.md).
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  ...config,
  mutate: ['control-plane/move-engine.ts', 'control-plane/move-store.ts', 'control-plane/move-record.ts'],
  vitest: { ...config.vitest, configFile: 'vitest.mutate-moves.config.ts' },
  incrementalFile: 'reports/mutation/moves/incremental.json',
  htmlReporter: { fileName: 'reports/mutation/moves/index.html' },
  jsonReporter: { fileName: 'reports/mutation/moves/mutation.json' },
  // Three runs at once on two cores take up to twice as long as the dry run alone: a slow run is not a hang.
  timeoutFactor: 3,
};
