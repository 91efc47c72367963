/**
 * Names known to more than one stack, and to the operator's tools: stack
 * names, the cell API's function name, and the SSM parameters by which a
 * cell finds the control plane and the tools find a deployment. They are
 * derived from the app's name and stage, never exported between stacks, so
 * that a cell can be deployed or deleted on its own. A leaf module: no
 * imports.
 */

/** What every name derives from: the app config's `appName` and `stage`. */
export interface AppIdentity {
  readonly appName: string;
  readonly stage: string;
}

/** A stack's name. */
export function stackName(config: AppIdentity, part: string): string {
  return `${config.appName}-${config.stage}-${part}`;
}

/** The name of a cell's API function: the router invokes it by this name. */
export function cellApiFunctionName(config: AppIdentity, cellId: string): string {
  return `${config.appName}-${config.stage}-${cellId}-api`;
}

/**
 * The alias every request reaches a function through: the cell API's and the
 * router's. CodeDeploy shifts it from one version to the next, so a new
 * version takes a canary's share of the traffic before all of it.
 */
export const SERVING_ALIAS = 'live';

/** What the router invokes: a cell API through its serving alias (`name:live`), never its unqualified $LATEST. */
export function cellApiInvokeName(config: AppIdentity, cellId: string): string {
  return `${cellApiFunctionName(config, cellId)}:${SERVING_ALIAS}`;
}

/** The name of a cell's composite alarm, "cell-N healthy": the wave deploy and the dashboard watch it by this name. */
export function cellHealthAlarmName(config: AppIdentity, cellId: string): string {
  return `${config.appName}-${config.stage}-${cellId}-healthy`;
}

/** The SNS topic alarm notifications go to (with config `alarmEmail`): cells find it by this name. */
export function alarmTopicName(config: AppIdentity): string {
  return `${config.appName}-${config.stage}-alarms`;
}

/** The name of the control plane's composite alarm: the front door's health. */
export function controlPlaneHealthAlarmName(config: AppIdentity): string {
  return `${config.appName}-${config.stage}-control-plane-healthy`;
}

/**
 * The SSM parameter holding the control-plane table's name. Cells read it at
 * deploy time to register themselves: a well-known name instead of a stack
 * export, so that no cell stack is tied to the control-plane stack.
 */
export function controlPlaneTableParameter(config: AppIdentity): string {
  return `/${config.appName}/${config.stage}/control-plane/table-name`;
}

/** The SSM parameter holding the ARN of the control plane's move workflow, which `cells move` and `cells apply` start. */
export function moveWorkflowParameter(config: AppIdentity): string {
  return `/${config.appName}/${config.stage}/control-plane/move-workflow-arn`;
}

/** What the control plane publishes about its identity provider, for the `cells` CLI. */
export type IdentityParameter = 'user-pool-id' | 'resource-server' | 'token-url';

/** The SSM parameter holding one fact of the identity provider. */
export function identityParameter(config: AppIdentity, name: IdentityParameter): string {
  return `/${config.appName}/${config.stage}/identity/${name}`;
}

/** The live-updates WebSocket API's stage: part of its URL and of the management API's ARN. */
export const LIVE_STAGE_NAME = 'live';

/** What the control plane publishes about its live-updates API, for the cells' publishers. */
export type LiveParameter = 'api-id' | 'connections-table';

/** The SSM parameter holding one fact of the live-updates API. */
export function liveParameter(config: AppIdentity, name: LiveParameter): string {
  return `/${config.appName}/${config.stage}/live/${name}`;
}

/** The CloudWatch namespace of the functions' metrics: `item-master` → `ItemMaster`. */
export function metricsNamespace(config: Pick<AppIdentity, 'appName'>): string {
  return config.appName
    .split('-')
    .filter((part) => part !== '')
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}
