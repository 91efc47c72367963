import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp, type ItemMasterStacks } from '../../lib/app.ts';
import { fromRoot } from '../../lib/paths.ts';

const cdkJson = JSON.parse(readFileSync(fromRoot('cdk.json'), 'utf8')) as { context: Record<string, unknown> };

/** The app as `cdk synth` builds it (cdk.json's context and feature flags), with overrides. */
export function buildTestApp(context: Record<string, unknown> = {}) {
  const outdir = mkdtempSync(path.join(tmpdir(), 'item-master-synth-'));
  const app = new App({ outdir, context: { ...cdkJson.context, ...context } });
  const stacks: ItemMasterStacks = buildApp(app);
  return { app, outdir, stacks, cleanup: () => rmSync(outdir, { recursive: true, force: true }) };
}

export function templateOf(stack: Parameters<typeof Template.fromStack>[0]): Template {
  return Template.fromStack(stack, { skipCyclicalDependenciesCheck: false });
}
