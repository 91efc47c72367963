/**
 * Synthesizing the app for the local runtime and the tests: quietly, with
 * cdk.json's context as `cdk synth` gives it, and only when the sources
 * changed since the last synthesis.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { buildApp } from '../lib/app.ts';
import { cdkJsonContext } from '../lib/config.ts';
import { NO_CERTIFICATE_WARNING } from '../lib/control-plane-stack.ts';
import { fromRoot } from '../lib/paths.ts';

const BUNDLING_LINE = /^Bundling asset \S+\.\.\.\r?\n?$/;

/**
 * Builds the app without the CDK's "Bundling asset …" line per function (it
 * writes them straight to stderr while it bundles, in the constructs'
 * constructors), and acknowledges the warnings that mean nothing off AWS:
 * locally the front door is plain HTTP on 127.0.0.1 by design. For the local
 * runtime and the tests; `cdk synth` and `cdk deploy` print everything.
 */
export function buildQuietly<T>(app: App, build: (app: App) => T, options: { warnAsOnDeploy?: boolean } = {}): T {
  const write = process.stderr.write;
  process.stderr.write = function (this: typeof process.stderr, chunk: unknown, ...rest: unknown[]) {
    if (typeof chunk === 'string' && BUNDLING_LINE.test(chunk)) return true;
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof process.stderr.write;
  try {
    const built = build(app);
    if (options.warnAsOnDeploy) return built;
    Validations.of(app).acknowledge({
      id: `Annotation::${NO_CERTIFICATE_WARNING}`,
      reason: 'Off AWS the front door is plain HTTP on 127.0.0.1; the warning is for deployments',
    });
    return built;
  } finally {
    process.stderr.write = write;
  }
}

/** Source files whose change makes cdk.out stale. */
const SOURCES = ['bin', 'lib', 'functions', 'layers/shared/src', 'layers/shared/package.json', 'cdk.json', 'package-lock.json'];

/** True when cdk.out exists and is newer than every source it was built from. */
export function isFresh(outdir: string): boolean {
  const manifest = path.join(outdir, 'manifest.json');
  if (!existsSync(manifest)) return false;
  const built = statSync(manifest).mtimeMs;
  return SOURCES.every((source) => newestMtime(fromRoot(source)) <= built);
}

function newestMtime(file: string): number {
  if (!existsSync(file)) return 0;
  const stat = statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(file).reduce((newest, name) => Math.max(newest, newestMtime(path.join(file, name))), stat.mtimeMs);
}

/** Synthesizes the app into `outdir` with cdk.json's context, as `cdk synth` does. */
export function synthesize(outdir: string, context: Record<string, unknown> = {}): void {
  const app = new App({ outdir, context: { ...cdkJsonContext(), ...context } });
  buildQuietly(app, buildApp);
  app.synth();
}
