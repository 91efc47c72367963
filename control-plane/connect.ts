import { existsSync, readFileSync } from 'node:fs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { GetParameterCommand, GetParametersCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AppConfig } from '../lib/config.ts';
import { controlPlaneTableParameter, identityParameter } from '../lib/naming.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/dynamodb-local.ts';
import type { LocalRuntimeState } from '../local/runtime.ts';
import { OperationError, TableTenantDataProbe, type TenantDataProbe } from './operations.ts';
import { ControlPlaneStore } from './store.ts';
import { CognitoClientDirectory, type ClientDirectory } from './tenants.ts';

/** The identity provider, for the tenant commands. */
export interface IdentityConnection {
  readonly directory: ClientDirectory;
  readonly tokenUrl: string;
  readonly resourceServer: string;
}

export interface Connection {
  readonly store: ControlPlaneStore;
  readonly probe: TenantDataProbe;
  /** Where the control plane is, in words. */
  readonly target: string;
  /** Undefined where there is no Cognito (the local runtime). */
  readonly identity?: IdentityConnection;
  close(): void;
}

/** The control plane of the local runtime that `npm start` is running, for the app and stage it runs. */
export function connectLocal(stateFile: string): Connection {
  if (!existsSync(stateFile)) throw new OperationError('no local runtime is running: start one with npm start');
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as LocalRuntimeState;
  if (!isRunning(state.pid)) throw new OperationError(`the local runtime that wrote ${stateFile} has stopped: start one with npm start`);
  const parameter = controlPlaneTableParameter(state);
  const tableName = state.ssmParameters[parameter];
  if (!tableName) throw new OperationError(`the local runtime declares no SSM parameter ${parameter}`);
  const client = new DynamoDBClient({ endpoint: state.dynamoEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  return connection(client, tableName, `local runtime at ${state.url}`);
}

/** The deployed control plane, found by its SSM parameter, with the SDK's usual credential chain. */
export async function connectAws(config: Pick<AppConfig, 'appName' | 'stage'>, region: string): Promise<Connection> {
  const parameter = controlPlaneTableParameter(config);
  const ssm = new SSMClient({ region });
  let tableName: string | undefined;
  try {
    tableName = (await ssm.send(new GetParameterCommand({ Name: parameter }))).Parameter?.Value;
  } catch (error) {
    if (error instanceof ParameterNotFound) {
      throw new OperationError(`${config.appName} (${config.stage}) has no control plane in ${region}: SSM parameter ${parameter} not found`);
    }
    throw error;
  } finally {
    ssm.destroy();
  }
  if (!tableName) throw new OperationError(`SSM parameter ${parameter} is empty`);
  const identity = await identityOf(config, region);
  const client = new DynamoDBClient({ region });
  const base = connection(client, tableName, `${config.appName} ${config.stage} in ${region}`);
  if (!identity) return base;
  const cognito = new CognitoIdentityProviderClient({ region });
  return {
    ...base,
    identity: {
      directory: new CognitoClientDirectory(cognito, identity.userPoolId, identity.resourceServer),
      tokenUrl: identity.tokenUrl,
      resourceServer: identity.resourceServer,
    },
    close: () => {
      base.close();
      cognito.destroy();
    },
  };
}

/** The user pool the control plane published, or undefined when it published none. */
async function identityOf(config: Pick<AppConfig, 'appName' | 'stage'>, region: string) {
  const names = { userPoolId: identityParameter(config, 'user-pool-id'), resourceServer: identityParameter(config, 'resource-server'), tokenUrl: identityParameter(config, 'token-url') };
  const ssm = new SSMClient({ region });
  try {
    const { Parameters = [] } = await ssm.send(new GetParametersCommand({ Names: Object.values(names) }));
    const value = (name: string) => Parameters.find((p) => p.Name === name)?.Value;
    const [userPoolId, resourceServer, tokenUrl] = [value(names.userPoolId), value(names.resourceServer), value(names.tokenUrl)];
    return userPoolId && resourceServer && tokenUrl ? { userPoolId, resourceServer, tokenUrl } : undefined;
  } finally {
    ssm.destroy();
  }
}

function connection(client: DynamoDBClient, tableName: string, target: string): Connection {
  return {
    store: new ControlPlaneStore(client, tableName),
    probe: new TableTenantDataProbe(DynamoDBDocumentClient.from(client)),
    target,
    close: () => client.destroy(),
  };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
