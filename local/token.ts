/**
 * `npm run token -- --tenant <id>`: an access token from the local runtime's
 * issuer, for curl and friends. On AWS, tokens come from Cognito's token
 * endpoint instead (see `npm run cells -- tenant create`).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SCOPES } from '../layers/shared/src/contracts/scopes.ts';
import type { TokenResponse } from './issuer.ts';
import { defaultStateFile, type LocalRuntimeState } from '../control-plane/local-target.ts';
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

let values;
try {
  ({ values } = parseArgs({
    options: {
      tenant: { type: 'string' },
      scope: { type: 'string', multiple: true },
      client: { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
      'local-state': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  console.error(`${(error as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.tenant) {
  console.error(`--tenant is required\n\n${USAGE}`);
  process.exit(2);
}

const stateFile = path.resolve(values['local-state'] ?? defaultStateFile(parseConfig((key) => cdkJsonContext()[key]).appName));
if (!existsSync(stateFile)) fail('no local runtime is running: start one with npm start');
const state = JSON.parse(readFileSync(stateFile, 'utf8')) as LocalRuntimeState;
if (!state.tokenUrl) fail('the local runtime has no issuer: the app declares no user pool');

const request = {
  tenantId: values.tenant,
  ...(values.scope && { scopes: values.scope }),
  ...(values.client && { clientId: values.client }),
  ...(values.expires && { expiresInSeconds: Number(values.expires) }),
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
