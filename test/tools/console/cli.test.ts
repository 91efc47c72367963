import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { fromRoot } from '../../../lib/paths.ts';

describe('npm run console', () => {
  it('refuses a bad port in one line, exit 2, before reaching any control plane', () => {
    for (const port of ['abc', '70000', '1.5']) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', fromRoot('tools/console/cli.ts'), '--port', port], {
        cwd: fromRoot(),
        encoding: 'utf8',
        // No credentials anywhere: a run that reached AWS would say so instead.
        env: { PATH: process.env.PATH, HOME: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true' },
      });
      expect([port, run.status]).toEqual([port, 2]);
      expect(run.stderr).toBe(
        `npm run console: --port must be a whole number from 0 to 65535, not "${port}" (npm run console -- --help lists the options)\n`,
      );
    }
  });
});
