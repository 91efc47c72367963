/**
 * How the operator's tools (`npm run cells -- --local`, `npm run token`)
 * reach the local runtime that `npm start` runs: the state file it writes,
 * and the region and credentials its DynamoDB Local takes. The runtime
 * imports this module; the tools never import the runtime.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StageName } from '../lib/config.ts';
import { fromRoot } from '../lib/paths.ts';
import { ControlPlaneError } from './errors.ts';

/** Any credentials do for DynamoDB Local; these are the ones every local client uses. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const LOCAL_REGION = 'us-east-1';

/** The folder of the local runtime's state and the operator's plans: `.<appName>/` at the project's root. */
export function stateDir(appName: string): string {
  return fromRoot(`.${appName}`);
}

/** Where the local runtime of an app says how to reach it. */
export function defaultStateFile(appName: string): string {
  return path.join(stateDir(appName), 'local-runtime.json');
}

/**
 * Creates the state folder with a `.gitignore` that ignores all of it, so
 * that a fork with another app name need not edit the root `.gitignore`.
 */
export function ensureStateDir(appName: string): string {
  const dir = stateDir(appName);
  mkdirSync(dir, { recursive: true });
  const ignore = path.join(dir, '.gitignore');
  if (!existsSync(ignore)) writeFileSync(ignore, '# Local state of `npm start` and `npm run cells`: never committed.\n*\n');
  return dir;
}

/** What a running local runtime tells the `cells` CLI. */
export interface LocalRuntimeState {
  readonly pid: number;
  /** The app and stage the runtime was synthesized for (cdk.json's, or the context overrides'). */
  readonly appName: string;
  readonly stage: StageName;
  readonly url: string;
  /** Where live-updates clients connect, when the app has a WebSocket API. */
  readonly liveUrl?: string;
  readonly dynamoEndpoint: string;
  /** Where the runtime's Step Functions API answers (the move workflow runs there). */
  readonly stepFunctionsEndpoint?: string;
  readonly region: string;
  /** SSM parameters the app declares, resolved to their local values. */
  readonly ssmParameters: Record<string, string>;
  /** Where `npm run token` gets a token (the local issuer), when the app has a user pool. */
  readonly tokenUrl?: string;
}

/** A state file that cannot be used: what is wrong, naming the file. */
export class LocalStateError extends ControlPlaneError {}

/** Reads a local runtime's state file, refusing one that is missing or not a runtime's, with the file's name. */
export function readLocalState(stateFile: string): LocalRuntimeState {
  const shownPath = path.relative(process.cwd(), stateFile) || stateFile;
  if (!existsSync(stateFile)) throw new LocalStateError(`no local runtime is running (no ${shownPath}): start one with npm start`);
  let state: Partial<LocalRuntimeState>;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as Partial<LocalRuntimeState>;
  } catch (error) {
    throw new LocalStateError(`${shownPath} is not a local runtime's state file: ${(error as Error).message}`);
  }
  const missing = (['pid', 'appName', 'url', 'dynamoEndpoint', 'ssmParameters'] as const).filter((key) => state?.[key] === undefined);
  if (typeof state !== 'object' || state === null || missing.length) {
    throw new LocalStateError(`${shownPath} is not a local runtime's state file: it has no ${missing.join(', ') || 'fields'}`);
  }
  return state as LocalRuntimeState;
}

/** Whether a process of this pid runs (one of another user's counts). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
