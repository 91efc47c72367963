import * as z from 'zod';
import { readFileSync } from 'node:fs';
import { DEFAULT_ALARM_THRESHOLDS, type AlarmThresholds } from './alarm-thresholds.ts';
import { DEFAULT_TRAFFIC_SHIFT, type TrafficShift } from './traffic-shift.ts';
import { closest, shown } from './cli-input.ts';
import { fromRoot } from './paths.ts';
import { QUOTA_LIMITS } from '../layers/shared/src/contracts/quotas.ts';
import { planConcurrency, type ConcurrencyPlan } from './concurrency.ts';

const THRESHOLD_KEYS = Object.keys(DEFAULT_ALARM_THRESHOLDS) as ThresholdKey[];
type ThresholdKey = keyof typeof DEFAULT_ALARM_THRESHOLDS;

/** How a bad value is shown in a message: quoted, escaped, shortened. */
const given = (input: unknown) => (typeof input === 'string' ? shown(input) : (JSON.stringify(input) ?? String(input)));

/**
 * A number from cdk.json (a JSON number) or from `-c` (text): text is taken
 * only when it is written as `pattern` says, so that empty text, spaces, hex
 * and exponents are refused rather than read as 0, 16 or 1000.
 */
const numberFrom = (pattern: RegExp, what: string) =>
  z.preprocess(
    (value) => (typeof value === 'string' && pattern.test(value) ? Number(value) : value),
    z.number({ error: (issue) => `must be ${what}, not ${given(issue.input)}` }),
  );
const wholeNumber = (what = 'a whole number') => numberFrom(/^\d+$/, what).pipe(z.number().int(`must be ${what}`));

/** A threshold: a number above 0 (at 0 an alarm fires whenever its metric has data), a fraction allowed. */
const threshold = numberFrom(/^\d+(\.\d+)?$/, 'a number')
  .pipe(z.number().positive('must be more than 0'))
  .optional();

/** CloudWatch Logs' retention values (aws-cdk-lib's RetentionDays, 9999 for ever): written out so that reading config loads no CDK. */
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653, 9999];

/** Cell ids become parts of stack and function names: lower-case, digits and single hyphens. */
const CELL_ID = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/** `-c key='{"a":1}'` arrives as a string; cdk.json gives the value itself. */
const jsonText = (value: unknown) => (typeof value === 'string' ? safeJson(value) : value);

const listOfStrings = z.preprocess((value) => {
  // `-c cells=cell-1,cell-2` arrives as a string; cdk.json gives an array.
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (text.startsWith('[')) return safeJson(text);
  return text === '' ? [] : text.split(',').map((part) => part.trim());
}, z.array(z.string()));

export const configSchema = z.object({
  // No default: the name is the fork's own, written once in cdk.json, and every other name derives from it.
  appName: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required: set "appName" in the context of cdk.json' : 'must be a string') })
    .regex(/^[a-z][a-z0-9-]{0,23}$/, 'must be 1 to 24 characters of a-z, 0-9 and "-", starting with a letter'),
  stage: z.enum(['dev', 'prod']).default('dev'),
  cells: listOfStrings
    .pipe(
      z
        .array(
          z
            .string()
            .max(20, 'must be at most 20 characters')
            .regex(CELL_ID, 'must be lower-case letters, digits and single hyphens, starting with a letter'),
        )
        .min(1, 'must name at least one cell'),
    )
    .superRefine((cells, ctx) => {
      const seen = new Set<string>();
      cells.forEach((cell, index) => {
        if (seen.has(cell)) ctx.addIssue({ code: 'custom', path: [index], message: `duplicate cell id "${cell}"` });
        seen.add(cell);
      });
    }),
  cellWeights: z
    .preprocess(
      (value) => (typeof value === 'string' ? safeJson(value) : value),
      z.record(z.string(), wholeNumber().pipe(z.number().min(1, 'must be at least 1').max(1000, 'must be at most 1000'))),
    )
    .default({}),
  certificateArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/, 'must be an ACM certificate ARN')
    .optional(),
  region: z
    .string()
    .regex(/^[a-z]{2}(?:-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1')
    .default(process.env.CDK_DEFAULT_REGION ?? 'us-east-1'),
  routingRefreshSeconds: wholeNumber('a whole number of seconds').pipe(z.number().min(1).max(3600)).default(10),
  waf: z.preprocess((value) => (value === 'true' ? true : value === 'false' ? false : value), z.boolean('must be true or false')).default(true),
  wafRateLimit: wholeNumber().pipe(z.number().min(100).max(2_000_000_000)).default(2000),
  accessTokenMinutes: wholeNumber('a whole number of minutes').pipe(z.number().min(5).max(1440)).default(60),
  logRetentionDays: wholeNumber('a whole number of days')
    .refine((days) => RETENTION_DAYS.includes(days), `must be one of ${RETENTION_DAYS.join(', ')}`)
    .default(30),
  alarmEmail: z.email('must be an email address').optional(),
  // `-c alarmThresholds='{"apiP99Ms":2000}'` arrives as a string; cdk.json gives an object. Unset fields keep their defaults.
  alarmThresholds: z
    .preprocess(
      jsonText,
      z.strictObject(Object.fromEntries(THRESHOLD_KEYS.map((key) => [key, threshold])) as Record<ThresholdKey, typeof threshold>, {
        error: (issue) =>
          issue.code === 'unrecognized_keys'
            ? `unknown threshold: ${issue.keys.join(', ')} (known: ${THRESHOLD_KEYS.join(', ')})`
            : 'must be an object of thresholds',
      }),
    )
    .default({}),
  lambdaTrafficShift: z
    .preprocess(
      (value) => (value === 'all-at-once' ? value : jsonText(value)),
      z.union(
        [
          z.literal('all-at-once'),
          z.strictObject({
            canaryPercent: z.number().int('must be a whole number').min(1, 'must be at least 1').max(99, 'must be at most 99'),
            canaryMinutes: z.number().int('must be a whole number of minutes').min(1, 'must be at least 1').max(2880, 'must be at most 2880'),
          }),
        ],
        { error: 'must be "all-at-once" or {"canaryPercent": 1-99, "canaryMinutes": 1-2880}' },
      ),
    )
    .default(DEFAULT_TRAFFIC_SHIFT),
  canaryCell: z.string().optional(),
  bakeMinutes: wholeNumber('a whole number of minutes').pipe(z.number().min(0).max(1440)).default(15),
  moveCopySegments: wholeNumber().pipe(z.number().min(1).max(64)).default(4),
  tenantRate: wholeNumber('a whole number of requests a second').pipe(z.number().min(QUOTA_LIMITS.rate.min).max(QUOTA_LIMITS.rate.max)).default(100),
  tenantBurst: wholeNumber('a whole number of requests').pipe(z.number().min(QUOTA_LIMITS.burst.min).max(QUOTA_LIMITS.burst.max)).default(200),
  accountConcurrency: wholeNumber().pipe(z.number().min(100, 'must be at least 100').max(10_000_000)).default(1000),
  unreservedConcurrency: wholeNumber().pipe(z.number().min(100, 'must be at least 100: Lambda keeps 100 unreserved').max(10_000_000)).default(100),
  routerConcurrency: wholeNumber().pipe(z.number().min(1, 'must be at least 1')).optional(),
  cellConcurrency: z
    .preprocess(
      (value) => (typeof value === 'string' && /^\s*\{/.test(value) ? safeJson(value) : value),
      z.union(
        [
          wholeNumber().pipe(z.number().min(1, 'must be at least 1')),
          z.record(z.string(), wholeNumber().pipe(z.number().min(1, 'must be at least 1'))),
        ],
        {
          error: 'must be a whole number for every cell, or {"<cellId>": n, …}',
        },
      ),
    )
    .optional(),
  deploymentWaves: z
    .preprocess(
      (value) => (typeof value === 'string' && !value.trim().startsWith('[') ? value.split(',').map((part) => part.trim()) : jsonText(value)),
      z.array(wholeNumber().pipe(z.number().min(1, 'must be at least 1'))).min(1, 'must name at least one wave size'),
    )
    .optional(),
});

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export type StageName = z.infer<typeof configSchema>['stage'];

export interface AppConfig {
  /**
   * Prefix of every stack and named resource, so that several copies can
   * share an account; also the API's resource server and realm, the metrics
   * namespace (`item-master` → `ItemMaster`) and the local state folder.
   */
  readonly appName: string;
  /** `prod` turns on deletion protection and RETAIN for stateful resources. */
  readonly stage: StageName;
  readonly cells: readonly string[];
  /**
   * A cell's relative share of the buckets when a rebalance is planned,
   * registered by the cell on deploy. @default 1 for every cell
   */
  readonly cellWeights: Readonly<Record<string, number>>;
  /** With a certificate the ALB serves HTTPS and redirects HTTP to it. */
  readonly certificateArn?: string;
  /** The region every stack deploys to. @default the CLI's region, else us-east-1 */
  readonly region: string;
  /** How often each router instance re-reads the cell registry and the bucket map. @default 10 */
  readonly routingRefreshSeconds: number;
  /** An AWS WAF web ACL on the ALB. @default true */
  readonly waf: boolean;
  /** Requests per client IP per 5 minutes before WAF blocks it. @default 2000 */
  readonly wafRateLimit: number;
  /** Lifetime of an access token, and so how long a revoked client's last token still works. @default 60 */
  readonly accessTokenMinutes: number;
  /** Days function logs are kept (a CloudWatch Logs retention value). */
  readonly logRetentionDays: number;
  /** Where alarm notifications go: an SNS topic in the control plane, this address subscribed. @default none: no topic */
  readonly alarmEmail?: string;
  /** What makes a cell or the front door unhealthy, field by field over `DEFAULT_ALARM_THRESHOLDS`. @default {} */
  readonly alarmThresholds: AlarmThresholds;
  /** How CodeDeploy moves the cell APIs' and the router's alias to a new version. @default 10% for 5 minutes */
  readonly lambdaTrafficShift: TrafficShift;
  /** The cell `npm run deploy` updates first, alone, and bakes. @default the first of `cells` */
  readonly canaryCell: string;
  /** How long each wave bakes, watched by its cells' health alarms, before the next starts. @default 15 */
  readonly bakeMinutes: number;
  /** Ranges of keys a move's clone and catch-up copy at once (tenants side by side, a big tenant split by key). @default 4 */
  readonly moveCopySegments: number;
  /** Requests a second each tenant may send, unless the control plane holds its own quota (`cells quota`). @default 100 */
  readonly tenantRate: number;
  /** Requests a tenant may send at once after a quiet spell; at least `tenantRate`. @default 200 */
  readonly tenantBurst: number;
  /** The account's Lambda concurrency limit in the region (Service Quotas). @default 1000 */
  readonly accountConcurrency: number;
  /** Concurrency left unreserved, for every other function of the account (Lambda keeps at least 100). @default 100 */
  readonly unreservedConcurrency: number;
  /**
   * The router's and each cell API's reserved concurrency, from
   * `routerConcurrency` and `cellConcurrency` (lib/concurrency.ts).
   * @default router: half of what is not kept unreserved; cells: the other half, by weight
   */
  readonly concurrency: ConcurrencyPlan;
  /**
   * The sizes of the waves after the canary cell; cells beyond the list go in
   * waves of its last size. @default 1, 2, 4 … (each wave twice the last)
   */
  readonly deploymentWaves?: readonly number[];
}

export class ConfigError extends Error {
  constructor(readonly issues: readonly string[]) {
    super(
      issues.length === 1 ? `invalid configuration: ${issues[0]}` : `invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/** Every configuration key; the rest of cdk.json's context is CDK's feature flags. */
export const CONFIG_KEYS = [
  'appName',
  'stage',
  'cells',
  'cellWeights',
  'certificateArn',
  'region',
  'routingRefreshSeconds',
  'waf',
  'wafRateLimit',
  'accessTokenMinutes',
  'logRetentionDays',
  'alarmThresholds',
  'alarmEmail',
  'lambdaTrafficShift',
  'canaryCell',
  'bakeMinutes',
  'deploymentWaves',
  'moveCopySegments',
  'tenantRate',
  'tenantBurst',
  'accountConcurrency',
  'unreservedConcurrency',
  'routerConcurrency',
  'cellConcurrency',
] as const;

/**
 * Parses the CDK context once. `read` is `(key) => app.node.tryGetContext(key)`.
 * A bad value throws a ConfigError naming each bad field.
 */
export function parseConfig(read: (key: string) => unknown): AppConfig {
  const raw = Object.fromEntries(CONFIG_KEYS.map((key) => [key, read(key)]).filter(([, value]) => value !== undefined));
  const result = configSchema
    .superRefine(({ cells, cellWeights, canaryCell, tenantRate, tenantBurst }, ctx) => {
      if (tenantBurst < tenantRate) {
        ctx.addIssue({
          code: 'custom',
          path: ['tenantBurst'],
          message: `must be at least tenantRate (${tenantRate}): a second's worth of requests must fit`,
        });
      }
      for (const cellId of Object.keys(cellWeights)) {
        if (!cells.includes(cellId)) ctx.addIssue({ code: 'custom', path: ['cellWeights', cellId], message: 'is not one of the cells' });
      }
      if (canaryCell !== undefined && !cells.includes(canaryCell)) {
        ctx.addIssue({ code: 'custom', path: ['canaryCell'], message: `is not one of the cells (${cells.join(', ')})` });
      }
    })
    .safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const path = issue.path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index ? '.' : ''}${String(part)}`)).join('');
        return `${path || '(root)'}: ${issue.message}`;
      }),
    );
  }
  const { canaryCell, routerConcurrency, cellConcurrency, ...data } = result.data;
  const concurrency = planConcurrency({ ...data, routerConcurrency, cellConcurrency });
  if (!concurrency.plan) throw new ConfigError(concurrency.issues);
  return { ...data, canaryCell: canaryCell ?? data.cells[0]!, concurrency: concurrency.plan };
}

/**
 * Refuses context keys that look like configuration (a plain camelCase word)
 * but are none of CONFIG_KEYS, naming the closest known key: a typo such as
 * `bakeMinute=60` would otherwise be ignored. CDK's own keys (feature flags,
 * `aws:cdk:…`, lookups) have a `:` or `@` and are left alone.
 */
export function checkContextKeys(keys: Iterable<string>): void {
  const issues = [...keys]
    .filter((key) => /^[A-Za-z][A-Za-z0-9]*$/.test(key) && !(CONFIG_KEYS as readonly string[]).includes(key))
    .map((key) => {
      const near = closest(key, CONFIG_KEYS);
      return `${shown(key)}: not a configuration key${near ? ` (did you mean ${near}?)` : ` (known: ${CONFIG_KEYS.join(', ')})`}`;
    });
  if (issues.length) throw new ConfigError(issues);
}

export function cellWeight(config: Pick<AppConfig, 'cellWeights'>, cellId: string): number {
  return config.cellWeights[cellId] ?? 1;
}

export function isProduction(config: Pick<AppConfig, 'stage'>): boolean {
  return config.stage === 'prod';
}

/** The context `cdk synth` gives the app: cdk.json's. */
export function cdkJsonContext(): Record<string, unknown> {
  return (JSON.parse(readFileSync(fromRoot('cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
}
