import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp, type ItemMasterStacks } from '../../lib/app.ts';
import { cdkJsonContext } from '../../lib/config.ts';
import { buildQuietly } from '../../local/quiet-synthesis.ts';

/**
 * The app as `cdk synth` builds it (cdk.json's context and feature flags),
 * with overrides; quietly, and with the warnings that only concern a deploy
 * acknowledged unless `warnAsOnDeploy`.
 */
export function buildTestApp(context: Record<string, unknown> = {}, options: { warnAsOnDeploy?: boolean } = {}) {
  const outdir = mkdtempSync(path.join(tmpdir(), 'item-master-synth-'));
  const app = new App({ outdir, context: { ...cdkJsonContext(), ...context } });
  const stacks: ItemMasterStacks = buildQuietly(app, buildApp, options);
  return { app, outdir, stacks, cleanup: () => rmSync(outdir, { recursive: true, force: true }) };
}
