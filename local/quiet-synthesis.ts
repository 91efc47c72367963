import { Validations, type App } from 'aws-cdk-lib';
import { NO_CERTIFICATE_WARNING } from '../lib/control-plane-stack.ts';

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
