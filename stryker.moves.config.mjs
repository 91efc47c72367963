// @ts-check
import config from './stryker.config.mjs';

/**
 * `npm run mutate:moves`: mutation testing of the migration code,
 * `control-plane/moves.ts`, apart from the other core modules because its suite
 * is slow (docs/quality.md). Its own incremental file and report.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  ...config,
  mutate: ['control-plane/moves.ts'],
  vitest: { ...config.vitest, configFile: 'vitest.mutate-moves.config.ts' },
  incrementalFile: 'reports/mutation/moves/incremental.json',
  htmlReporter: { fileName: 'reports/mutation/moves/index.html' },
  jsonReporter: { fileName: 'reports/mutation/moves/mutation.json' },
};
