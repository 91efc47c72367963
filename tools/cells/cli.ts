/**
 * `npm run cells -- <command>`: look at and change the control plane, on
 * AWS (the SDK's credential chain) or in the local runtime (`--local`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import Table from 'cli-table3';
import { escapeControls, InputError, parseCommandLine, shown, wholeNumber } from '../../lib/cli-input.ts';
import { cdkJsonContext, ConfigError, parseConfig } from '../../lib/config.ts';
import { ID_RULE, isValidId } from '../../layers/shared/src/ids.ts';
import { BUCKET_COUNT } from '../../routing/routing.ts';
import { defaultStateFile } from '../../control-plane/local-target.ts';
// What reaches the control plane (the AWS SDK's clients) loads once a command's input is known to be good: a refusal is quick.
import type { ControlPlaneConnection } from '../../control-plane/connect.ts';
import { ControlPlaneError, OperationError } from '../../control-plane/errors.ts';
import type { CellOperations } from '../../control-plane/operations.ts';
import { QUOTA_LIMITS, quotaProblem, type TenantQuota } from '../../layers/shared/src/contracts/quotas.ts';
const actions = () => import('./actions.ts');
import { FINISHED, type MoveRecord, type MoveRequest } from '../../control-plane/move-record.ts';
import { progressBar, seconds, stateOf, stepLines, subjectOf, summary } from './move-view.ts';

const USAGE = `usage: npm run cells -- <command> [options]

commands:
  list                      cells with status, weight, buckets and pinned tenants
  route <tenantId>          the tenant's bucket and cell, and why (override or map)
  pin <tenantId> <cellId>   send the tenant to the cell whatever its bucket
  unpin <tenantId>          send the tenant back to its bucket's cell
  drain <cellId>            keep serving the cell's tenants; a plan moves them all away
  activate <cellId>         let the cell serve and take buckets again
  deactivate <cellId>       stop routing to the cell: its tenants get 503
  tenants <cellId> <n|a-b>  the tenants the cell's directory records in the bucket(s)
  backfill <cellId>         record every tenant with data in the cell in its directory
                            (one scan; for data written before the directory existed)
  plan                      the fewest bucket moves that even out active cells by weight
  move tenant <tenantId> <cellId>
                            move a tenant with its data to a cell, while it serves
  move bucket <n|a-b> <cellId>
                            move the tenants of a bucket (or range) with their data
  move --revert <moveId>    take a flipped move's tenants back, until it forgets its
                            source's copy (cells moves says until when)
  moves                     the moves running and finished, with their timings
  apply [plan.json]         carry out a saved plan's moves (default: the plan of the
                            current map version); Ctrl-C pauses, apply again resumes
  history                   the map's versions, newest first
  tenant create <tenantId>  a machine client for the tenant: prints its id and secret, once
  tenant list [<tenantId>]  the clients bound to tenants
  tenant revoke <clientId>  delete the client: it gets no new tokens
  quota set <tenantId> --rate <n> [--burst <n>]
                            the tenant's own quota: requests a second, and at once
                            (default burst: twice the rate); the router takes it
                            within its refresh interval
  quota get <tenantId>      the tenant's quota in force: its own, or the default
  quota list                the tenants with a quota of their own
  quota unset <tenantId>    back to the default (tenantRate, tenantBurst in cdk.json)

options:
  --local                   the local runtime (npm start) instead of AWS
  --region <region>         AWS region (default: config region, from cdk.json or CDK_DEFAULT_REGION)
  --stage <stage>           dev or prod (default: cdk.json; --local uses the runtime's)
  --json                    machine-readable output
  --out <file>              plan: where to save it (default .<appName>/plan-v<version>.json)
  --limit <n>               history: how many versions (default 20)
  --abort                   move: undo the running move (before its flip); apply: undo
                            the plan's running moves
  --revert <moveId>         move: the move to revert (after its flip, before forget)
  --rate <n>, --burst <n>   quota set: requests a second, and requests at once
  --grace <seconds>         move, apply: how long the source keeps its copy after the
                            flip before it is forgotten (default 300)
  --concurrency <n>         apply: moves before their flip at once (default 2)
  --scope <scope>           tenant create: a scope to grant, repeatable (default all:
                            items.read, items.write, orders.write)
  --local-state <file>      the local runtime's state file (default .<appName>/local-runtime.json)
  -h, --help                this text`;

const HELP_HINT = '(npm run cells -- --help lists the commands and options)';

const { values: flags, positionals } = (() => {
  try {
    return parseCommandLine(process.argv.slice(2), {
      options: {
        local: { type: 'boolean', default: false },
        region: { type: 'string' },
        stage: { type: 'string' },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
        limit: { type: 'string', default: '20' },
        abort: { type: 'boolean', default: false },
        revert: { type: 'string' },
        rate: { type: 'string' },
        burst: { type: 'string' },
        grace: { type: 'string', default: '300' },
        concurrency: { type: 'string', default: '2' },
        scope: { type: 'string', multiple: true },
        'local-state': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: true,
    });
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    console.error(`error: ${error.message} ${HELP_HINT}`);
    process.exit(2);
  }
})();

if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}
if (positionals.length === 0) {
  console.error(`error: name a command ${HELP_HINT}`);
  process.exit(2);
}

let connection: ControlPlaneConnection | undefined;
/** The control plane, reached once a command's arguments are known to be good: bad input costs no call. */
let connected: () => Promise<ControlPlaneConnection>;
try {
  const [command = '', ...args] = positionals;
  const config = parseConfig((key) => (key === 'stage' && flags.stage !== undefined ? flags.stage : cdkJsonContext()[key]));
  connected = async () => {
    const { connectAws, connectLocal } = await import('../../control-plane/connect.ts');
    connection ??= flags.local
      ? connectLocal(path.resolve(flags['local-state'] ?? defaultStateFile(config.appName)))
      : await connectAws(config, flags.region ?? config.region);
    return connection;
  };
  const by = `${userInfo().username}@${hostname()}`;
  if (command === 'tenant') {
    await tenant(config.accessTokenMinutes, by, args);
  } else if (command === 'quota') {
    await quota({ rate: config.tenantRate, burst: config.tenantBurst }, by, args);
  } else {
    const operations = async () => {
      const c = await connected();
      const { CellOperations } = await import('../../control-plane/operations.ts');
      return new CellOperations({ store: c.store, cellData: c.cellData, by });
    };
    await run(operations, command, args, config.appName, by);
  }
} catch (error) {
  const message = error instanceof ConfigError ? error.message : describe(error);
  console.error(`error: ${printable(message)}${error instanceof InputError ? ` ${HELP_HINT}` : ''}`);
  process.exitCode = error instanceof InputError || error instanceof ConfigError ? 2 : 1;
} finally {
  connection?.close();
}

async function run(operations: () => Promise<CellOperations>, command: string, args: string[], appName: string, by: string): Promise<void> {
  const expect = (count: number, names: string) => {
    if (args.length !== count) throw new InputError(`${command} takes ${names || 'no arguments'}`);
  };
  switch (command) {
    case 'list': {
      expect(0, '');
      const listing = await (await operations()).list();
      if (flags.json) return print(listing);
      console.log(`map version ${listing.version} · ${(await connected()).target}`);
      console.log(
        table(
          ['cell', 'status', 'weight', 'buckets', 'pinned', 'table'],
          listing.cells.map((c) => [c.cellId, c.status, c.weight, c.buckets, c.pinnedTenants, c.tableName]),
        ),
      );
      for (const { cellId, buckets } of listing.unregistered) {
        console.log(`! ${cellId} holds ${buckets} buckets but is not registered: its tenants get 503`);
      }
      return;
    }
    case 'route': {
      expect(1, '<tenantId>');
      const id = tenantId(args[0]!);
      const route = await (await operations()).route(id);
      if (flags.json) return print(route);
      const why = route.reason === 'override' ? 'pinned by an override' : `bucket ${route.bucket} maps there`;
      console.log(`${route.tenantId} → ${route.cellId} (${route.status}): ${why}, map version ${route.version}`);
      console.log(`bucket ${route.bucket}`);
      return;
    }
    case 'pin': {
      expect(2, '<tenantId> <cellId>');
      const id = tenantId(args[0]!);
      const { version, route } = await (await operations()).pin(id, args[1]!);
      if (flags.json) return print({ version: version?.version, route });
      console.log(
        version
          ? `${route.tenantId} pinned to ${route.cellId} in map version ${version.version}`
          : `${route.tenantId} is already pinned to ${route.cellId}: nothing changed`,
      );
      return;
    }
    case 'unpin': {
      expect(1, '<tenantId>');
      const id = tenantId(args[0]!);
      const { version, route } = await (await operations()).unpin(id);
      if (flags.json) return print({ version: version.version, route });
      console.log(`${route.tenantId} unpinned: back to ${route.cellId} by bucket ${route.bucket}, map version ${version.version}`);
      return;
    }
    case 'drain':
    case 'activate':
    case 'deactivate': {
      expect(1, '<cellId>');
      const status = ({ drain: 'draining', activate: 'active', deactivate: 'inactive' } as const)[command];
      const cell = await (await operations()).setStatus(args[0] as string, status);
      if (flags.json) return print(cell);
      console.log(`${cell.cellId} is ${cell.status}`);
      return;
    }
    case 'tenants': {
      expect(2, '<cellId> <bucket, or a range a-b>');
      const { first, last } = bucketRange(args[1] as string);
      const found = await (await operations()).tenants(
        args[0] as string,
        Array.from({ length: last - first + 1 }, (_, i) => first + i),
      );
      if (flags.json) return print(found);
      const rows = found.flatMap(({ bucket, tenants }) => tenants.map((tenantId) => [bucket, tenantId]));
      console.log(`${rows.length} tenants of ${args[0]} in buckets ${args[1]}`);
      if (rows.length) console.log(table(['bucket', 'tenant'], rows));
      return;
    }
    case 'backfill': {
      expect(1, '<cellId>');
      const { cells } = await (await connected()).store.readRouting();
      const cell = cells.find((c) => c.cellId === args[0]);
      if (!cell) throw new OperationError(`no cell "${args[0]}" is registered`);
      const done = await (await connected()).cellData.backfillDirectory(cell, (scanned, tenants) => {
        if (!flags.json && process.stdout.isTTY)
          process.stdout.write(`\rscanned ${scanned.toLocaleString('en')} records · ${tenants.toLocaleString('en')} tenants\u001b[K`);
      });
      if (!flags.json && process.stdout.isTTY) process.stdout.write('\n');
      if (flags.json) return print(done);
      console.log(
        `${cell.cellId}: ${done.tenants} tenants with data, ${done.added} added to the directory (${done.scanned.toLocaleString('en')} records scanned)`,
      );
      return;
    }
    case 'plan': {
      expect(0, '');
      const { makePlan, defaultPlanFile } = await actions();
      const { saved, file } = await makePlan(await operations(), (version) => flags.out ?? defaultPlanFile(appName, version));
      if (flags.json) return print({ ...saved, file });
      console.log(`plan from map version ${saved.basedOnVersion}: ${saved.moveCount} bucket moves`);
      console.log(
        table(
          ['cell', 'status', 'weight', 'buckets now', 'after plan'],
          saved.cells.map((c) => [c.cellId, c.status, c.weight, c.before, c.after]),
        ),
      );
      if (saved.moves.length) {
        console.log(
          table(
            ['from', 'to', 'buckets', 'ranges'],
            saved.moves.map((m) => [m.from, m.to, m.count, ranges(m.ranges)]),
          ),
        );
      }
      console.log(`saved to ${path.relative(process.cwd(), file) || file}`);
      return;
    }
    case 'move': {
      if (flags.revert !== undefined) {
        if (args.length > 0) throw new InputError('move --revert <moveId> takes no other arguments: the move says what goes back, and where');
        if (flags.abort) throw new InputError('move takes --revert or --abort, not both');
        if (!/^[\w-]{1,64}$/.test(flags.revert))
          throw new InputError(`--revert takes a move id (cells moves lists them), not ${shown(flags.revert)}`);
        return revert(flags.revert, by);
      }
      expect(3, '<tenant|bucket> <tenantId|n|a-b> <cellId>');
      const [kind, subject, to] = args as [string, string, string];
      let request: MoveRequest;
      if (kind === 'tenant') request = { kind, tenantId: tenantId(subject), to };
      else if (kind === 'bucket') request = { kind, ...bucketRange(subject), to };
      else throw new InputError(`move takes tenant or bucket, not ${shown(kind)}`);
      return move(request, by);
    }
    case 'moves': {
      expect(0, '');
      const c = await connected();
      const moves = await c.moves.list();
      if (flags.json) return print(moves);
      if (moves.length === 0) return console.log('no moves yet');
      const unfinished = moves.filter((m) => !FINISHED.has(m.state));
      const { running, unknown } = unfinished.length ? await (await actions()).runningMoves(c.runner) : {};
      const runs = (m: MoveRecord) => running?.has(m.moveId) ?? true;
      console.log(
        table(
          ['move', 'what', 'from', 'to', 'state', 'copied', 'writes refused', 'started', 'took'],
          moves.map((m) => [
            m.moveId,
            subjectOf(m),
            m.from,
            m.to,
            stateOf(m, Date.now(), runs(m)),
            m.copied,
            m.fencedMs === undefined ? '' : seconds(m.fencedMs),
            new Date(m.createdAt).toISOString().slice(0, 19).replace('T', ' '),
            FINISHED.has(m.state) ? seconds(m.updatedAt - m.createdAt) : `${seconds(Date.now() - m.createdAt)} so far`,
          ]),
        ),
      );
      if (unknown) console.log(`could not tell which moves a workflow runs (${printable(unknown)}): a stopped move is not marked`);
      const stopped = unfinished.find((m) => !runs(m));
      if (stopped) {
        console.log(
          `a stopped move goes on from its checkpoint when asked again, e.g. npm run cells -- move ${stopped.kind} ${stopped.subject} ${stopped.to}${flags.local ? ' --local' : ''} (or apply, for a plan's moves)`,
        );
      }
      return;
    }
    case 'apply': {
      if (args.length > 1) throw new InputError('apply takes [plan.json]');
      return apply(args[0], appName, by);
    }
    case 'history': {
      expect(0, '');
      const limit = wholeNumber('--limit', flags.limit, { min: 1, max: 1_000 });
      const versions = await (await operations()).history(limit);
      if (flags.json) return print(versions);
      console.log(
        table(
          ['version', 'created', 'by', 'pinned', 'change'],
          versions.map((v) => [v.version, v.createdAt ?? '', v.by, Object.keys(v.overrides).length, v.change]),
        ),
      );
      return;
    }
    default:
      throw new InputError(`unknown command ${shown(command)}`);
  }
}

async function tenant(accessTokenMinutes: number, by: string, args: string[]): Promise<void> {
  const [action = '', ...rest] = args;
  const needIdentity = async () => {
    const connection = await connected();
    const identity = connection.identity;
    if (!identity) {
      throw new OperationError(
        flags.local
          ? 'the local runtime has no Cognito: get a token for any tenant with npm run token -- --tenant <tenantId>'
          : `${connection.target} publishes no identity provider: deploy the control plane first`,
      );
    }
    return identity;
  };
  switch (action) {
    case 'create': {
      if (rest.length !== 1) throw new InputError('tenant create takes <tenantId>');
      const id = tenantId(rest[0]!);
      const { directory, tokenUrl, resourceServer } = await needIdentity();
      const { TenantClients } = await import('../../control-plane/tenants.ts');
      const clients = new TenantClients({ store: (await connected()).store, directory, accessTokenMinutes, by });
      const created = await clients.create(id, flags.scope);
      if (flags.json) return print({ ...created, tokenUrl });
      const scope = created.scopes.map((s) => `${resourceServer}/${s}`).join(' ');
      console.log(`client ${created.clientId} created for tenant ${created.tenantId}

  client id      ${created.clientId}
  client secret  ${created.secret}
  scopes         ${created.scopes.join(', ')}
  token endpoint ${tokenUrl}

The secret is shown this once; keep it in a secret store. Get a token (valid ${accessTokenMinutes} min):

  curl -s -u '${created.clientId}:<secret>' -d grant_type=client_credentials \\
    --data-urlencode 'scope=${scope}' ${tokenUrl}`);
      return;
    }
    case 'list': {
      if (rest.length > 1) throw new InputError('tenant list takes [<tenantId>]');
      const id = rest[0] === undefined ? undefined : tenantId(rest[0]);
      const clients = await (await connected()).store.listClients(id);
      if (flags.json) return print(clients);
      console.log(
        table(
          ['tenant', 'client', 'scopes', 'created', 'by'],
          clients.map((c) => [c.tenantId, c.clientId, c.scopes.join(' '), c.createdAt, c.by]),
        ),
      );
      return;
    }
    case 'revoke': {
      if (rest.length !== 1) throw new InputError('tenant revoke takes <clientId>');
      const { directory } = await needIdentity();
      const { TenantClients } = await import('../../control-plane/tenants.ts');
      const clients = new TenantClients({ store: (await connected()).store, directory, accessTokenMinutes, by });
      const revoked = await clients.revoke(rest[0] as string);
      if (flags.json) return print(revoked);
      console.log(
        `client ${revoked.clientId} of tenant ${revoked.tenantId} deleted: no new tokens; tokens already issued expire within ${accessTokenMinutes} min`,
      );
      return;
    }
    default:
      throw new InputError(`unknown tenant command ${shown(action)}`);
  }
}

async function quota(defaultQuota: TenantQuota, by: string, args: string[]): Promise<void> {
  const [action = '', ...rest] = args;
  const operations = async () => {
    const { QuotaOperations } = await import('../../control-plane/quotas.ts');
    return new QuotaOperations({ store: (await connected()).store, defaultQuota, by });
  };
  const takes = (count: number, names: string) => {
    if (rest.length !== count) throw new InputError(`quota ${action} takes ${names || 'no arguments'}`);
    if (action !== 'set' && (flags.rate !== undefined || flags.burst !== undefined))
      throw new InputError(`--rate and --burst go with quota set, not quota ${action}`);
  };
  const shownQuota = (q: TenantQuota) => `${q.rate.toLocaleString('en')} requests a second, bursts of ${q.burst.toLocaleString('en')}`;
  switch (action) {
    case 'set': {
      takes(1, '<tenantId> --rate <n> [--burst <n>]');
      const id = tenantId(rest[0]!);
      if (flags.rate === undefined) throw new InputError('quota set needs --rate <requests a second>');
      const rate = wholeNumber('--rate', flags.rate, { min: QUOTA_LIMITS.rate.min, max: QUOTA_LIMITS.rate.max });
      const burst =
        flags.burst === undefined
          ? Math.min(2 * rate, QUOTA_LIMITS.burst.max)
          : wholeNumber('--burst', flags.burst, { min: QUOTA_LIMITS.burst.min, max: QUOTA_LIMITS.burst.max });
      const problem = quotaProblem({ rate, burst });
      if (problem) throw new InputError(problem);
      const set = await (await operations()).set(id, { rate, burst });
      if (flags.json) return print(set);
      console.log(`${set.tenantId}: ${shownQuota(set)}; the router takes it within its refresh interval`);
      return;
    }
    case 'get': {
      takes(1, '<tenantId>');
      const found = await (await operations()).get(tenantId(rest[0]!));
      if (flags.json) return print(found);
      console.log(
        `${found.tenantId}: ${shownQuota(found)} (${found.source === 'override' ? `its own, set ${found.updatedAt} by ${found.by}` : 'the default'})`,
      );
      return;
    }
    case 'list': {
      takes(0, '');
      const quotas = await (await operations()).list();
      if (flags.json) return print(quotas);
      console.log(`default: ${shownQuota(defaultQuota)}`);
      if (quotas.length === 0) return console.log('no tenant has a quota of its own');
      console.log(
        table(
          ['tenant', 'rate /s', 'burst', 'set', 'by'],
          quotas.map((q) => [q.tenantId, q.rate, q.burst, q.updatedAt, q.by]),
        ),
      );
      return;
    }
    case 'unset': {
      takes(1, '<tenantId>');
      const removed = await (await operations()).unset(tenantId(rest[0]!));
      if (flags.json) return print(removed);
      console.log(`${removed.tenantId}: back to the default, ${shownQuota(defaultQuota)} (was ${shownQuota(removed)})`);
      return;
    }
    default:
      throw new InputError(action ? `unknown quota command ${shown(action)}: set, get, list or unset` : 'quota takes set, get, list or unset');
  }
}

function bucketRange(text: string): { first: number; last: number } {
  const range = /^(\d+)(?:-(\d+))?$/.exec(text);
  const first = Number(range?.[1]);
  const last = Number(range?.[2] ?? range?.[1]);
  if (!range || last < first || last >= BUCKET_COUNT) {
    throw new InputError(`${shown(text)} is no bucket: buckets are 0 to ${BUCKET_COUNT - 1}; give one, or a range a-b with a ≤ b`);
  }
  return { first, last };
}

/** A tenant id from the command line, refused unless it meets the id rule. */
function tenantId(text: string): string {
  if (!isValidId(text)) throw new InputError(`tenant id ${shown(text)} ${ID_RULE}`);
  return text;
}

/** A message for the terminal: control characters escaped, and no line longer than a screen or two. */
function printable(message: string): string {
  return message
    .split('\n')
    .map((line) => {
      const escaped = escapeControls(line);
      return escaped.length > 400 ? `${escaped.slice(0, 400)}… (${escaped.length.toLocaleString('en-US')} characters)` : escaped;
    })
    .join('\n');
}

/** How long a moved source keeps its copy: at most a day, as a move's record is kept. */
function graceOption(): number {
  return wholeNumber('--grace', flags.grace, { min: 0, max: 86_400 });
}

/** Ctrl-C stops following (or scheduling); what runs in the control plane goes on. */
function interruption(): AbortSignal {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  return controller.signal;
}

/** Starts a move (or resumes, or aborts, the one running for the same request) and follows it to its end. */
async function move(request: MoveRequest, by: string): Promise<void> {
  const graceSeconds = graceOption();
  const c = await connected();
  const { abortMove, startMove } = await actions();
  let record: MoveRecord;
  if (flags.abort) {
    record = await abortMove(c, request);
    console.log(`aborting move ${record.moveId}`);
  } else {
    const started = await startMove(c, request, { by, graceSeconds });
    record = started.record;
    console.log(
      started.resumed
        ? `resuming move ${record.moveId} (${record.state})`
        : `move ${record.moveId}: ${subjectOf(record)} from ${record.from} to ${record.to} (${c.target})`,
    );
  }
  await follow(c, record);
}

/** Starts the revert of a flipped move and follows it to its flip. */
async function revert(moveId: string, by: string): Promise<void> {
  const graceSeconds = graceOption();
  const c = await connected();
  const { revertMove } = await actions();
  const record = await revertMove(c, moveId, { by, graceSeconds });
  console.log(`move ${record.moveId} reverts move ${moveId}: ${subjectOf(record)} from ${record.from} back to ${record.to} (${c.target})`);
  await follow(c, record);
}

/** Prints a move's steps until its flip (or its end); Ctrl-C stops following, not the move. */
async function follow(c: ControlPlaneConnection, record: MoveRecord): Promise<void> {
  const signal = interruption();
  let last: MoveRecord | undefined;
  for (;;) {
    const now = (await c.moves.get(record.moveId))!;
    if (!flags.json) for (const line of stepLines(last, now)) console.log(line);
    last = now;
    // The operator's part ends at the flip: forgetting the source's copy after the grace period is the workflow's.
    if (FINISHED.has(now.state) || now.state === 'forget') break;
    if (signal.aborted) {
      console.log(`stopped following: the move goes on in the control plane (cells moves shows it; move again to follow it)`);
      return;
    }
    await sleep(250);
  }
  if (flags.json) return print(last);
  console.log(summary(last));
  if (last.state !== 'done' && last.state !== 'forget') process.exitCode = 1;
}

/** Carries out a saved plan, showing its progress; Ctrl-C pauses. */
async function apply(file: string | undefined, appName: string, by: string): Promise<void> {
  const graceSeconds = graceOption();
  const concurrency = wholeNumber('--concurrency', flags.concurrency, { min: 1, max: 64 });
  const { checkPlanCells, defaultPlanFile, moveEngine, moveRunner, readPlan } = await actions();
  // A plan named on the command line is checked before the control plane is reached.
  const given = file === undefined ? undefined : { planFile: path.resolve(file), plan: readPlan(path.resolve(file)) };
  const c = await connected();
  const { planFile, plan } =
    given ??
    (await (async () => {
      const { version } = await c.store.readRouting();
      const planFile = path.resolve(defaultPlanFile(appName, version?.version));
      return { planFile, plan: readPlan(planFile) };
    })());
  await checkPlanCells(c, plan, planFile);
  const { PlanRunner } = await import('../../control-plane/apply.ts');
  const runner = new PlanRunner({
    store: c.store,
    engine: moveEngine(c),
    moves: c.moves,
    runner: moveRunner(c),
    concurrency,
    graceSeconds,
    by,
    onProgress: (p) => {
      if (flags.json) return;
      if (process.stdout.isTTY) process.stdout.write(`\r${progressBar(p)}\u001b[K`);
      else if (Date.now() - lastPrinted >= 5_000) {
        lastPrinted = Date.now();
        console.log(progressBar(p));
      }
    },
  });
  let lastPrinted = 0;
  if (flags.abort) {
    const aborted = await runner.abort(plan);
    if (flags.json) return print(aborted);
    console.log(
      aborted.length
        ? `aborting ${aborted.length} moves: ${aborted.map((m) => m.moveId).join(', ')}`
        : 'no move of this plan is running before its flip',
    );
    return;
  }
  const buckets = plan.moves.reduce((n, m) => n + m.count, 0);
  if (buckets === 0) {
    if (flags.json) return print({ bucketsTotal: 0 });
    console.log(`${path.relative(process.cwd(), planFile) || planFile} moves no bucket: nothing to do`);
    return;
  }
  console.log(`applying ${path.relative(process.cwd(), planFile) || planFile}: ${buckets} buckets (Ctrl-C pauses; apply again resumes)`);
  const result = await runner.apply(plan, interruption());
  if (process.stdout.isTTY && !flags.json) process.stdout.write('\n');
  if (flags.json) return print(result);
  console.log(progressBar(result));
  for (const failed of result.failed)
    console.log(`! move ${failed.moveId} (buckets ${failed.subject}) ended without moving: ${failed.error ?? 'aborted'}`);
  if (result.paused) console.log('paused: the moves already running go on in the control plane; apply again to resume');
  else if (result.failed.length === 0) console.log('done: every bucket of the plan is in its new cell');
  if (result.failed.length > 0) process.exitCode = 1;
}

function print(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** Plain aligned columns: readable in a terminal, easy to grep. */
function table(head: string[], rows: Array<Array<string | number>>): string {
  const blank = {
    top: '',
    'top-mid': '',
    'top-left': '',
    'top-right': '',
    bottom: '',
    'bottom-mid': '',
    'bottom-left': '',
    'bottom-right': '',
    left: '',
    'left-mid': '',
    mid: '',
    'mid-mid': '',
    right: '',
    'right-mid': '',
    middle: '  ',
  };
  const output = new Table({ head, chars: blank, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 } });
  output.push(...rows.map((row) => row.map(String)));
  return output
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

function ranges(list: Array<[number, number]>): string {
  const text = list.map(([from, to]) => (from === to ? `${from}` : `${from}-${to}`));
  return text.length > 4 ? `${text.slice(0, 4).join(', ')} … (+${text.length - 4})` : text.join(', ');
}

function describe(error: unknown): string {
  if (error instanceof InputError || error instanceof ControlPlaneError) return error.message;
  const { name, message } = error as Error;
  if (name === 'CredentialsProviderError') return `no AWS credentials found (${message}); or use --local for the local runtime`;
  if (name === 'ResourceNotFoundException') return `the control-plane table is gone: ${message}`;
  return name === 'Error' ? message : `${name}: ${message}`;
}
