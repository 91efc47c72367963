import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { OPERATOR, sdkClientConfig } from '../layers/shared/src/sdk-timeouts.ts';
import type { AppConfig } from '../lib/config.ts';
import { controlPlaneTableParameter, identityParameter, moveWorkflowParameter } from '../layers/shared/src/contracts/names.ts';
import type { MoveRunner } from './apply.ts';
import { CellData } from './cell-data.ts';
import { MoveStore } from './move-store.ts';
import { WorkflowMoveRunner } from './move-runner.ts';
import { isRunning, LOCAL_CREDENTIALS, LOCAL_REGION, readLocalState } from './local-target.ts';
import { OperationError } from './errors.ts';
import { ControlPlaneStore } from './store.ts';
import { CognitoClientDirectory, type ClientDirectory } from './tenants.ts';

/** The identity provider, for the tenant commands. */
export interface IdentityConnection {
  readonly directory: ClientDirectory;
  readonly tokenUrl: string;
  readonly resourceServer: string;
}

export interface ControlPlaneConnection {
  readonly store: ControlPlaneStore;
  readonly cellData: CellData;
  readonly moves: MoveStore;
  /** Starts moves in the control plane's move workflow; undefined where the control plane has none. */
  readonly runner?: MoveRunner;
  /** Where the control plane is, in words. */
  readonly target: string;
  /** Undefined where there is no Cognito (the local runtime). */
  readonly identity?: IdentityConnection;
  close(): void;
}

/** The control plane of the local runtime that `npm start` is running, for the app and stage it runs. */
export function connectLocal(stateFile: string): ControlPlaneConnection {
  const state = readLocalState(stateFile);
  if (!isRunning(state.pid)) throw new OperationError(`the local runtime that wrote ${stateFile} has stopped: start one with npm start`);
  const parameter = controlPlaneTableParameter(state);
  const tableName = state.ssmParameters[parameter];
  if (!tableName) throw new OperationError(`the local runtime declares no SSM parameter ${parameter}`);
  const client = new DynamoDBClient({
    endpoint: state.dynamoEndpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    ...sdkClientConfig(OPERATOR),
  });
  const workflowArn = state.ssmParameters[moveWorkflowParameter(state)];
  const sfn =
    workflowArn && state.stepFunctionsEndpoint
      ? new SFNClient({ endpoint: state.stepFunctionsEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, ...sdkClientConfig(OPERATOR) })
      : undefined;
  return connection(client, tableName, `local runtime at ${state.url}`, sfn && workflowArn ? { sfn, workflowArn } : undefined);
}

/** The deployed control plane, found by its SSM parameters (one read), with the SDK's usual credential chain. */
export async function connectAws(config: Pick<AppConfig, 'appName' | 'stage'>, region: string): Promise<ControlPlaneConnection> {
  const names = {
    table: controlPlaneTableParameter(config),
    userPoolId: identityParameter(config, 'user-pool-id'),
    resourceServer: identityParameter(config, 'resource-server'),
    tokenUrl: identityParameter(config, 'token-url'),
    moveWorkflow: moveWorkflowParameter(config),
  };
  const ssm = new SSMClient({ region, ...sdkClientConfig(OPERATOR) });
  let found: Map<string | undefined, string | undefined>;
  try {
    const { Parameters = [] } = await ssm.send(new GetParametersCommand({ Names: Object.values(names) }));
    found = new Map(Parameters.map((p) => [p.Name, p.Value]));
  } finally {
    ssm.destroy();
  }
  if (!found.has(names.table)) {
    throw new OperationError(`${config.appName} (${config.stage}) has no control plane in ${region}: SSM parameter ${names.table} not found`);
  }
  const tableName = found.get(names.table);
  if (!tableName) throw new OperationError(`SSM parameter ${names.table} is empty`);
  const client = new DynamoDBClient({ region, ...sdkClientConfig(OPERATOR) });
  const workflowArn = found.get(names.moveWorkflow);
  const workflow = workflowArn ? { sfn: new SFNClient({ region, ...sdkClientConfig(OPERATOR) }), workflowArn } : undefined;
  const base = connection(client, tableName, `${config.appName} ${config.stage} in ${region}`, workflow);
  const [userPoolId, resourceServer, tokenUrl] = [found.get(names.userPoolId), found.get(names.resourceServer), found.get(names.tokenUrl)];
  // A control plane without an identity provider still serves the cell commands.
  if (!userPoolId || !resourceServer || !tokenUrl) return base;
  const cognito = new CognitoIdentityProviderClient({ region, ...sdkClientConfig(OPERATOR) });
  return {
    ...base,
    identity: { directory: new CognitoClientDirectory(cognito, userPoolId, resourceServer), tokenUrl, resourceServer },
    close: () => {
      base.close();
      cognito.destroy();
    },
  };
}

function connection(
  client: DynamoDBClient,
  tableName: string,
  target: string,
  workflow?: { sfn: SFNClient; workflowArn: string },
): ControlPlaneConnection {
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return {
    store: new ControlPlaneStore(client, tableName),
    cellData: new CellData(doc),
    moves: new MoveStore(doc, tableName),
    ...(workflow && { runner: new WorkflowMoveRunner(workflow.sfn, workflow.workflowArn) }),
    target,
    close: () => {
      client.destroy();
      workflow?.sfn.destroy();
    },
  };
}
