// @ts-check
/**
 * `npm run mutate`: mutation testing of the core modules (docs/quality.md).
 * Not part of `npm test`: a full run takes a long time; reruns are incremental.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  mutate: [
    'functions/router/router.ts',
    'functions/router/routing-cache.ts',
    'functions/router/bucket-cache.ts',
    'layers/shared/src/auth.ts',
    'functions/cell-api/versioned-store.ts',
    'functions/cell-api/item-store.ts',
    'functions/cell-api/order-store.ts',
    'functions/cell-api/ownership.ts',
    'control-plane/store.ts',
    'control-plane/operations.ts',
    'control-plane/plan.ts',
    'local/function-host.ts',
    'local/streams.ts',
  ],
  testRunner: 'vitest',
  // Forks, not threads: the suites spawn processes with inherited stdio, which a worker thread's stdout cannot give.
  vitest: { configFile: 'vitest.mutate.config.ts', related: false, pool: 'forks' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  coverageAnalysis: 'perTest',
  incremental: true,
  incrementalFile: 'reports/mutation/incremental.json',
  reporters: ['html', 'json', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  // What the suites above never read: build output, local state, docs and screenshots.
  ignorePatterns: ['cdk.out', '.item-master', 'docs', 'coverage', '*.tmp.ts'],
  // Half checkers, half test runners: three runners on 2 cores, as they mostly wait on DynamoDB Local.
  concurrency: 6,
  // A static mutant (a module-level value) reloads everything and runs every test; they are left out, and counted in docs/quality.md.
  ignoreStatic: true,
  // Added to each test's own time (x1.5) before a mutant counts as timed out, and the runner is restarted.
  timeoutMS: 10_000,
  thresholds: { high: 90, low: 85, break: null },
};
