import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Most suites wait on DynamoDB Local and child processes, not the CPU: two files at once beat one even on
    // 2 cores (the whole suite in 399 s against 549 s, one run each on this project's 2-core machine).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    globalSetup: ['test/support/global-setup.ts'],
    // Synthesis and DynamoDB Local are slow on a 2-core machine; no test asserts on time.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { POWERTOOLS_DEV: 'false', POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true', POWERTOOLS_TRACE_ENABLED: 'false' },
  },
});
