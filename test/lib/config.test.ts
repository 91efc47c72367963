import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkContextKeys, ConfigError, parseConfig } from '../../lib/config.ts';
import { fromRoot } from '../../lib/paths.ts';

const read = (context: Record<string, unknown>) => (key: string) => ({ appName: 'shop', ...context })[key];

describe('parseConfig', () => {
  it('defaults to the dev stage', () => {
    const config = parseConfig(read({ cells: ['cell-1'] }));
    expect(config).toMatchObject({ appName: 'shop', stage: 'dev', cells: ['cell-1'], logRetentionDays: 30 });
    expect(config.certificateArn).toBeUndefined();
  });

  it('weighs every cell 1 unless told, takes weights as JSON from the command line, and refreshes routing every 10 s', () => {
    const config = parseConfig(read({ cells: ['cell-1', 'cell-2'], cellWeights: '{"cell-2": 3}' }));
    expect(config.cellWeights).toEqual({ 'cell-2': 3 });
    expect(config.routingRefreshSeconds).toBe(10);
    expect(parseConfig(read({ cells: ['c'], routingRefreshSeconds: '2' })).routingRefreshSeconds).toBe(2);
  });

  it('puts WAF on at 2000 requests per IP per 5 minutes and tokens at 60 minutes unless told, from the command line too', () => {
    expect(parseConfig(read({ cells: ['c'] }))).toMatchObject({ waf: true, wafRateLimit: 2000, accessTokenMinutes: 60 });
    expect(parseConfig(read({ cells: ['c'], waf: 'false', wafRateLimit: '500', accessTokenMinutes: '15' }))).toMatchObject({
      waf: false,
      wafRateLimit: 500,
      accessTokenMinutes: 15,
    });
    expect(parseConfig(read({ cells: ['c'], waf: false })).waf).toBe(false);
  });

  it('keeps every alarm threshold at its default unless told, from cdk.json or as JSON from the command line', () => {
    expect(parseConfig(read({ cells: ['c'] })).alarmThresholds).toEqual({});
    expect(parseConfig(read({ cells: ['c'], alarmThresholds: { apiP99Ms: 2000 } })).alarmThresholds).toEqual({ apiP99Ms: 2000 });
    expect(parseConfig(read({ cells: ['c'], alarmThresholds: '{"router5xx": "20", "iteratorAgeMs": 30000}' })).alarmThresholds).toEqual({
      router5xx: 20,
      iteratorAgeMs: 30_000,
    });
  });

  it('shifts traffic 10% for 5 minutes and waves from the first cell with 15-minute bakes unless told, from the command line too', () => {
    expect(parseConfig(read({ cells: ['a', 'b'] }))).toMatchObject({
      lambdaTrafficShift: { canaryPercent: 10, canaryMinutes: 5 },
      canaryCell: 'a',
      bakeMinutes: 15,
    });
    expect(parseConfig(read({ cells: ['a'] })).deploymentWaves).toBeUndefined();
    expect(parseConfig(read({ cells: ['a'] })).moveCopySegments).toBe(4);
    expect(parseConfig(read({ cells: ['a'], moveCopySegments: '16' })).moveCopySegments).toBe(16);
    expect(() => parseConfig(read({ cells: ['a'], moveCopySegments: '0' }))).toThrow('moveCopySegments');
    expect(
      parseConfig(read({ cells: 'a,b', canaryCell: 'b', bakeMinutes: '0', deploymentWaves: '1, 3', lambdaTrafficShift: 'all-at-once' })),
    ).toMatchObject({
      canaryCell: 'b',
      bakeMinutes: 0,
      deploymentWaves: [1, 3],
      lambdaTrafficShift: 'all-at-once',
    });
    expect(
      parseConfig(read({ cells: ['a'], deploymentWaves: '[2,4]', lambdaTrafficShift: '{"canaryPercent":25,"canaryMinutes":30}' })),
    ).toMatchObject({
      deploymentWaves: [2, 4],
      lambdaTrafficShift: { canaryPercent: 25, canaryMinutes: 30 },
    });
  });

  it('gives every tenant 100 requests a second in bursts of 200 unless told, and refuses a burst below the rate', () => {
    expect(parseConfig(read({ cells: ['c'] }))).toMatchObject({ tenantRate: 100, tenantBurst: 200 });
    expect(parseConfig(read({ cells: ['c'], tenantRate: '20', tenantBurst: '20' }))).toMatchObject({ tenantRate: 20, tenantBurst: 20 });
    expect(() => parseConfig(read({ cells: ['c'], tenantRate: 50, tenantBurst: 10 }))).toThrow('tenantBurst: must be at least tenantRate (50)');
    expect(() => parseConfig(read({ cells: ['c'], tenantRate: 0 }))).toThrow('tenantRate: Too small');
    expect(() => parseConfig(read({ cells: ['c'], tenantRate: 'lots' }))).toThrow(
      'tenantRate: must be a whole number of requests a second, not "lots"',
    );
  });

  it('reserves half of what the account can reserve for the router and splits the rest over the cells by weight, unless told', () => {
    const config = parseConfig(read({ cells: ['a', 'b', 'c'], cellWeights: { c: 2 } }));
    expect(config.concurrency).toEqual({ router: 450, cells: { a: 112, b: 112, c: 225 } });
    expect(
      parseConfig(read({ cells: ['a', 'b'], accountConcurrency: 3000, routerConcurrency: 1000, cellConcurrency: '{"a": 50}' })).concurrency,
    ).toEqual({
      router: 1000,
      cells: { a: 50, b: 950 },
    });
    expect(parseConfig(read({ cells: ['a', 'b'], cellConcurrency: '20' })).concurrency.cells).toEqual({ a: 20, b: 20 });
  });

  it('refuses reserved concurrency the account cannot hold, or for a cell it does not have, in one line each', () => {
    expect(() => parseConfig(read({ cells: ['a', 'b'], cellConcurrency: 400 }))).toThrow(
      "invalid configuration: reserved concurrency: the router's 450 and the cells' 800 make 1250, over the 900 the account can reserve (accountConcurrency 1000 less unreservedConcurrency 100)",
    );
    expect(() => parseConfig(read({ cells: ['a'], cellConcurrency: { z: 5 } }))).toThrow('cellConcurrency.z: is not one of the cells (a)');
    expect(() => parseConfig(read({ cells: ['a'], unreservedConcurrency: 10 }))).toThrow('unreservedConcurrency: must be at least 100');
    expect(() => parseConfig(read({ cells: ['a'], cellConcurrency: 'many' }))).toThrow('cellConcurrency: must be a whole number for every cell');
  });

  it('takes cells from the command line as a comma-separated or JSON list', () => {
    expect(parseConfig(read({ cells: 'cell-1, cell-2' })).cells).toEqual(['cell-1', 'cell-2']);
    expect(parseConfig(read({ cells: '["a-1","b-2"]' })).cells).toEqual(['a-1', 'b-2']);
  });

  it.each([
    [{ cells: [] }, 'cells: must name at least one cell'],
    [{ cells: '' }, 'cells: must name at least one cell'],
    [{ cells: ['cell-1', 'cell-1'] }, 'cells[1]: duplicate cell id "cell-1"'],
    [{ cells: ['Cell_1'] }, 'cells[0]: must be lower-case letters'],
    [{ cells: ['cell-1', 'x'.repeat(21)] }, 'cells[1]: must be at most 20 characters'],
    [{ cells: ['cell-1'], stage: 'qa' }, 'stage:'],
    [{ cells: ['cell-1'], certificateArn: 'not-an-arn' }, 'certificateArn: must be an ACM certificate ARN'],
    [{ cells: ['cell-1'], logRetentionDays: 2 }, 'logRetentionDays: must be one of'],
    [{ cells: ['cell-1'], appName: 'Item Master' }, 'appName:'],
    [{ cells: ['cell-1'], appName: undefined }, 'appName: is required: set "appName" in the context of cdk.json'],
    [{ cells: ['cell-1'], cellWeights: { 'cell-2': 2 } }, 'cellWeights.cell-2: is not one of the cells'],
    [{ cells: ['cell-1'], cellWeights: { 'cell-1': 0 } }, 'cellWeights.cell-1: must be at least 1'],
    [{ cells: ['cell-1'], cellWeights: '{"cell-1": 1.5}' }, 'cellWeights.cell-1: must be a whole number'],
    [{ cells: ['cell-1'], routingRefreshSeconds: 0 }, 'routingRefreshSeconds:'],
    [{ cells: ['cell-1'], waf: 'off' }, 'waf: must be true or false'],
    [{ cells: ['cell-1'], wafRateLimit: 10 }, 'wafRateLimit:'],
    [{ cells: ['cell-1'], accessTokenMinutes: 2 }, 'accessTokenMinutes:'],
    [{ cells: ['cell-1'], alarmThresholds: { apiP99: 2000 } }, 'alarmThresholds: unknown threshold: apiP99 (known: apiErrorPercent,'],
    [{ cells: ['cell-1'], alarmThresholds: { apiP99Ms: -1 } }, 'alarmThresholds.apiP99Ms: must be more than 0'],
    // At 0 an alarm would be in ALARM whenever its metric has data.
    [{ cells: ['cell-1'], alarmThresholds: { apiThrottles: 0 } }, 'alarmThresholds.apiThrottles: must be more than 0'],
    // An empty value is no value, not 0.
    [{ cells: ['cell-1'], alarmThresholds: '{"apiP99Ms": ""}' }, 'alarmThresholds.apiP99Ms: must be a number'],
    [{ cells: ['cell-1'], alarmThresholds: '{"apiP99Ms": "Infinity"}' }, 'alarmThresholds.apiP99Ms:'],
    [{ cells: ['cell-1'], alarmThresholds: { apiP99Ms: 'fast' } }, 'alarmThresholds.apiP99Ms:'],
    [{ cells: ['cell-1'], alarmThresholds: '[1, 2]' }, 'alarmThresholds: must be an object of thresholds'],
    [{ cells: ['cell-1'], alarmEmail: 'ops at example' }, 'alarmEmail: must be an email address'],
    [{ cells: ['cell-1'], canaryCell: 'cell-9' }, 'canaryCell: is not one of the cells (cell-1)'],
    [{ cells: ['cell-1'], bakeMinutes: -1 }, 'bakeMinutes:'],
    [{ cells: ['cell-1'], bakeMinutes: 'soon' }, 'bakeMinutes:'],
    [{ cells: ['cell-1'], deploymentWaves: [] }, 'deploymentWaves: must name at least one wave size'],
    [{ cells: ['cell-1'], deploymentWaves: '1,0' }, 'deploymentWaves[1]: must be at least 1'],
    [{ cells: ['cell-1'], deploymentWaves: [1.5] }, 'deploymentWaves[0]: must be a whole number'],
    [{ cells: ['cell-1'], lambdaTrafficShift: { canaryPercent: 100, canaryMinutes: 5 } }, 'lambdaTrafficShift.canaryPercent: must be at most 99'],
    [{ cells: ['cell-1'], lambdaTrafficShift: 'slowly' }, 'lambdaTrafficShift: must be "all-at-once" or'],
    // Text where a whole number is meant: empty, spaces, hex, exponents and fractions are no number (never 0, 16 or 100).
    ...(['bakeMinutes', 'routingRefreshSeconds', 'accessTokenMinutes', 'wafRateLimit', 'logRetentionDays'] as const).flatMap((key) =>
      ['', ' ', ' 30', '0x10', '1e2', '2.5', '-1'].map((text): [Record<string, unknown>, string] => [
        { cells: ['cell-1'], [key]: text },
        `${key}: must be a whole number`,
      ]),
    ),
    [{ cells: ['cell-1'], deploymentWaves: '1, ,2' }, 'deploymentWaves[1]: must be a whole number, not ""'],
    [{ cells: ['cell-1'], cellWeights: '{"cell-1": "0x2"}' }, 'cellWeights.cell-1: must be a whole number, not "0x2"'],
    [{ cells: ['cell-1'], alarmThresholds: '{"apiP99Ms": "1e3"}' }, 'alarmThresholds.apiP99Ms: must be a number, not "1e3"'],
  ])('rejects %j naming the field', (context, message) => {
    expect(() => parseConfig(read(context))).toThrow(ConfigError);
    expect(() => parseConfig(read(context))).toThrow(message);
  });
});

describe('checkContextKeys', () => {
  it("refuses a key that is no configuration key, naming the closest, and leaves CDK's own keys alone", () => {
    expect(() => checkContextKeys(['bakeMinute'])).toThrow(new ConfigError(['"bakeMinute": not a configuration key (did you mean bakeMinutes?)']));
    expect(() => checkContextKeys(['cells', 'colour'])).toThrow(/"colour": not a configuration key \(known: appName, stage, cells/);
    expect(() =>
      checkContextKeys(['appName', '@aws-cdk/core:newStyleStackSynthesis', 'aws:cdk:enable-path-metadata', 'availability-zones:account=1:region=x']),
    ).not.toThrow();
  });

  it('is what cdk synth meets: a typo in -c stops the app in one line', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', fromRoot('bin', 'app.ts')], {
      cwd: fromRoot(),
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ appName: 'shop', cells: ['cell-1'], bakeMinute: '60' }) },
      encoding: 'utf8',
    });
    expect([run.status, run.stderr]).toEqual([1, 'invalid configuration: "bakeMinute": not a configuration key (did you mean bakeMinutes?)\n']);
  });
});

describe('the CDK app entry point', () => {
  it('stops on a bad configuration with one clear message and no stack trace', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', fromRoot('bin', 'app.ts')], {
      cwd: fromRoot(),
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ appName: 'shop', cells: ['cell-1', 'cell-1'], stage: 'qa' }) },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('invalid configuration:');
    expect(run.stderr).toContain('cells[1]: duplicate cell id "cell-1"');
    expect(run.stderr).toContain('stage:');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('cdk.json', () => {
  it('sets every feature flag aws-cdk-lib recommends, to its recommended value', async () => {
    const { readFileSync } = await import('node:fs');
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    const recommended = require('aws-cdk-lib/recommended-feature-flags.json') as Record<string, unknown>;
    const cdkJson = JSON.parse(readFileSync(fromRoot('cdk.json'), 'utf8')) as { context: Record<string, unknown>; notices: boolean };
    expect(Object.keys(recommended).length).toBeGreaterThan(50);
    for (const [flag, value] of Object.entries(recommended)) expect(cdkJson.context[flag], flag).toEqual(value);
    expect(cdkJson.notices).toBe(false);
    // Whatever a fork sets there, it must be a configuration the app accepts.
    expect(() => parseConfig((key) => cdkJson.context[key])).not.toThrow();
  });
});
