import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/synth.ts';

interface ValidationReport {
  pluginReports: Array<{
    pluginName: string;
    violations: Array<{ ruleName: string; severity: string; violatingConstructs: Array<{ constructPath: string }> }>;
  }>;
}

let built: ReturnType<typeof buildTestApp>;
let synthError: unknown;

beforeAll(() => {
  built = buildTestApp({}, { bundle: false });
  try {
    built.app.synth();
  } catch (error) {
    synthError = error;
  }
});
afterAll(() => built?.cleanup());

describe('cdk-nag (AWS Solutions checks)', () => {
  it('finds nothing unacknowledged in any stack', () => {
    const report = JSON.parse(readFileSync(path.join(built.outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
    const findings = report.pluginReports
      .filter((plugin) => plugin.pluginName !== 'Construct Annotations')
      .flatMap((plugin) =>
        plugin.violations.flatMap((violation) =>
          violation.violatingConstructs.map((construct) => `${violation.ruleName} at ${construct.constructPath}`),
        ),
      );
    expect(findings).toEqual([]);
    expect(synthError).toBeUndefined();
  });

  it('fails synthesis on an unacknowledged finding', () => {
    const broken = buildTestApp({ cells: ['cell-1'] }, { bundle: false });
    try {
      new Bucket(broken.stacks.cells[0]!, 'UnloggedBucket', { enforceSSL: true });
      expect(() => broken.app.synth()).toThrow();
      const report = readFileSync(path.join(broken.outdir, 'validation-report.json'), 'utf8');
      expect(report).toContain('AwsSolutions-S1');
      expect(report).toContain('Cell-cell-1/UnloggedBucket');
    } finally {
      broken.cleanup();
    }
  });
});

const cfnLint = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' }).status === 0;

describe.runIf(cfnLint)('cfn-lint', () => {
  it('reports no errors on any synthesized template', () => {
    const templates = readdirSync(built.outdir).filter((name) => name.endsWith('.template.json'));
    expect(templates).toHaveLength(4);
    const run = spawnSync('cfn-lint', ['--format', 'parseable', ...templates.map((t) => path.join(built.outdir, t))], {
      encoding: 'utf8',
    });
    const errors = run.stdout.split('\n').filter((line) => /:E\d{4}:/.test(line));
    expect(errors).toEqual([]);
    // cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational; 1 means it failed to run.
    expect(run.status, run.stderr).not.toBe(1);
    expect((run.status ?? 1) & 2).toBe(0);
  });
});
