import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fromRoot } from '../../lib/paths.ts';

/**
 * The shared package's index loads Powertools' tracer and with it the X-Ray
 * SDK, whose cls-hooked namespace hooks every promise of the process that
 * loads it (the functions' layer swaps cls-hooked out; code run from source
 * does not). The local runtime, the CDK app and the CLIs import the shared
 * leaf modules instead, and must stay free of it.
 */
describe('code outside the functions', () => {
  it('loads no X-Ray SDK: the local runtime, the CDK app and the tenant commands', async () => {
    const modules = ['local/runtime.ts', 'lib/app.ts', 'control-plane/tenants.ts', 'control-plane/operations.ts'];
    const script = [
      "import { createRequire } from 'node:module';",
      ...modules.map((file) => `await import(${JSON.stringify(pathToFileURL(fromRoot(file)).href)});`),
      'const loaded = Object.keys(createRequire(import.meta.url).cache).filter((file) => /aws-xray-sdk|cls-hooked/.test(file));',
      'console.log(JSON.stringify(loaded));',
    ].join('\n');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fromRoot(),
      timeout: 60_000,
    });
    expect(JSON.parse(stdout)).toEqual([]);
  });
});
