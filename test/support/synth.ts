import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp, type ItemMasterStacks } from '../../lib/app.ts';
import { cdkJsonContext, CONFIG_KEYS } from '../../lib/config.ts';
import { buildQuietly } from '../../local/synthesis.ts';

/**
 * The configuration the tests build the app with, whatever a fork's cdk.json
 * says: the tests pass it themselves, so a fork's own name and cell count
 * change no test.
 */
export const TEST_CONFIG = { appName: 'item-master', stage: 'dev', cells: ['cell-1', 'cell-2', 'cell-3'], region: 'us-east-1' } as const;

/** cdk.json's feature flags: its context without the app's configuration. */
export function featureFlags(): Record<string, unknown> {
  return Object.fromEntries(Object.entries(cdkJsonContext()).filter(([key]) => !(CONFIG_KEYS as readonly string[]).includes(key)));
}

/** The context `cdk synth` would give the app, with cdk.json's configuration replaced by the tests' own and the overrides. */
export function testContext(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...featureFlags(), ...TEST_CONFIG, ...overrides };
}

/**
 * The app as `cdk synth` builds it (cdk.json's feature flags) from the
 * tests' configuration with overrides; quietly, and with the warnings that
 * only concern a deploy acknowledged unless `warnAsOnDeploy`. With
 * `bundle: false` no function is bundled (CDK's `aws:cdk:bundling-stacks`
 * empty, as `cdk synth --exclusively` does for stacks it skips): the
 * templates are the same but for asset hashes, in a tenth of the time.
 */
export function buildTestApp(context: Record<string, unknown> = {}, options: { warnAsOnDeploy?: boolean; bundle?: boolean } = {}) {
  const outdir = mkdtempSync(path.join(tmpdir(), 'app-synth-'));
  const app = new App({ outdir, context: { ...testContext(context), ...(options.bundle === false && { 'aws:cdk:bundling-stacks': [] }) } });
  const stacks: ItemMasterStacks = buildQuietly(app, buildApp, options);
  return { app, outdir, stacks, cleanup: () => rmSync(outdir, { recursive: true, force: true }) };
}
