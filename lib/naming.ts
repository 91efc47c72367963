import type { AppConfig } from './config.ts';

/**
 * Names known to more than one stack. They are derived, never exported
 * between stacks, so that a cell can be deployed or deleted on its own.
 */
export function stackName(config: Pick<AppConfig, 'appName' | 'stage'>, part: string): string {
  return `${config.appName}-${config.stage}-${part}`;
}

/** The name of a cell's API function: the router invokes it by this name. */
export function cellApiFunctionName(config: Pick<AppConfig, 'appName' | 'stage'>, cellId: string): string {
  return `${config.appName}-${config.stage}-${cellId}-api`;
}

/**
 * The SSM parameter holding the control-plane table's name. Cells read it at
 * deploy time to register themselves: a well-known name instead of a stack
 * export, so that no cell stack is tied to the control-plane stack.
 */
export function controlPlaneTableParameter(config: Pick<AppConfig, 'appName' | 'stage'>): string {
  return `/${config.appName}/${config.stage}/control-plane/table-name`;
}

/** What the control plane publishes about its identity provider, for the `cells` CLI. */
export type IdentityParameter = 'user-pool-id' | 'resource-server' | 'token-url';

/** The SSM parameter holding one fact of the identity provider. */
export function identityParameter(config: Pick<AppConfig, 'appName' | 'stage'>, name: IdentityParameter): string {
  return `/${config.appName}/${config.stage}/identity/${name}`;
}

/** The live-updates WebSocket API's stage: part of its URL and of the management API's ARN. */
export const LIVE_STAGE_NAME = 'live';

/** What the control plane publishes about its live-updates API, for the cells' publishers. */
export type LiveParameter = 'api-id' | 'connections-table';

/** The SSM parameter holding one fact of the live-updates API. */
export function liveParameter(config: Pick<AppConfig, 'appName' | 'stage'>, name: LiveParameter): string {
  return `/${config.appName}/${config.stage}/live/${name}`;
}
