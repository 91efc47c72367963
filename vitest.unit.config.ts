import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * `npm run test:unit`: every test that needs no Java (DynamoDB Local), no
 * Chromium and no local runtime, without the global setup that starts
 * DynamoDB Local. A test file needs them when it asks for the suite's
 * DynamoDB Local (`inject('dynamoEndpoint')`), starts a runtime or drives a
 * browser; every other file is in this tier, so a new test lands in it
 * unless it needs them. `npm test` runs everything.
 */
const NEEDS_SERVICES = /inject\('dynamoEndpoint'\)|startLocalRuntime|chromium\.launch|runBench\(/;

const testFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(file);
    return entry.name.endsWith('.test.ts') ? [file] : [];
  });

export const UNIT_TESTS = testFiles('test').filter((file) => !NEEDS_SERVICES.test(readFileSync(file, 'utf8')));

// Spread, not mergeConfig: that would add these lists to the base's instead of replacing them.
// Files share their worker's module cache (no isolation): these files mock no module and restore what they set in the
// environment, and loading the CDK and the SDK once per worker instead of once per file is a fifth of the tier's time.
// `npm test` keeps each file isolated.
export default defineConfig({ test: { ...base.test, include: UNIT_TESTS, globalSetup: [], isolate: false } });
