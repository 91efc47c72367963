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
export default defineConfig({ test: { ...base.test, include: UNIT_TESTS, globalSetup: [] } });
