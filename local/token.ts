/**
 * `npm run token -- --tenant <id>`: an access token from the local runtime's
 * issuer, for curl and friends. On AWS, tokens come from Cognito's token
 * endpoint instead (see `npm run cells -- tenant create`).
 */
import path from 'node:path';
import { ID_RULE, isValidId } from '../layers/shared/src/ids.ts';
import { InputError, parseCommandLine, shown, wholeNumber } from '../lib/cli-input.ts';
import { SCOPES } from '../layers/shared/src/contracts/scopes.ts';
import type { TokenResponse } from './issuer.ts';
import { defaultStateFile, readLocalState, type LocalRuntimeState } from '../control-plane/local-target.ts';
import { cdkJsonContext, parseConfig } from '../lib/config.ts';

const USAGE = `usage: npm run token -- --tenant <tenantId> [--scope <scope>]... [--client <id>] [--expires <seconds>] [--json]

  --tenant <tenantId>    the tenant the token acts for (required)
  --scope <scope>        a scope to grant, repeatable (default all: ${SCOPES.join(', ')})
  --client <id>          the client id the token names (default local-<tenantId>)
  --expires <seconds>    lifetime (default 3600)
  --json                 the whole token response instead of the bare token
  --local-state <file>   the local runtime's state file (default .<appName>/local-runtime.json)

Prints a token signed by the local runtime's issuer (npm start must be running):
  TOKEN=$(npm run -s token -- --tenant acme)
  curl -H "authorization: Bearer $TOKEN" http://127.0.0.1:3000/tenants/acme/items`;

function fail(message: string, code = 1): never {
  console.error(`error: ${message}`);
  process.exit(code);
}

const HELP_HINT = '(npm run token -- --help lists the options)';
let values: ReturnType<typeof parseTokenArgs>;
try {
  values = parseTokenArgs();
} catch (error) {
  if (!(error instanceof InputError)) throw error;
  fail(`${error.message} ${HELP_HINT}`, 2);
}

function parseTokenArgs() {
  return parseCommandLine(process.argv.slice(2), {
    options: {
      tenant: { type: 'string' },
      scope: { type: 'string', multiple: true },
      client: { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
      'local-state': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  }).values;
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.tenant) fail(`--tenant is required ${HELP_HINT}`, 2);
if (!isValidId(values.tenant)) fail(`--tenant ${shown(values.tenant)} ${ID_RULE}`, 2);
let expiresInSeconds: number | undefined;
try {
  expiresInSeconds = values.expires === undefined ? undefined : wholeNumber('--expires', values.expires, { min: 1 });
} catch (error) {
  fail((error as Error).message, 2);
}

const stateFile = path.resolve(values['local-state'] ?? defaultStateFile(parseConfig((key) => cdkJsonContext()[key]).appName));
let state: LocalRuntimeState;
try {
  state = readLocalState(stateFile);
} catch (error) {
  fail((error as Error).message);
}
if (!state.tokenUrl) fail('the local runtime has no issuer: the app declares no user pool');

const request = {
  tenantId: values.tenant,
  ...(values.scope && { scopes: values.scope }),
  ...(values.client && { clientId: values.client }),
  ...(expiresInSeconds !== undefined && { expiresInSeconds }),
};
let response: Response;
try {
  response = await fetch(state.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
} catch {
  fail(`the local runtime at ${state.url} does not answer: start one with npm start`);
}
const body = (await response.json()) as TokenResponse & { error?: string };
if (!response.ok) fail(body.error ?? `the issuer answered ${response.status}`);
console.log(values.json ? JSON.stringify(body, null, 2) : body.access_token);
