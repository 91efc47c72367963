import * as dynamodb from '@aws-sdk/client-dynamodb';
import type { LocalAssembly, LocalSdkCall } from './assembly.ts';
import { resolveValue } from './template-values.ts';

interface SdkCall {
  service: string;
  action: string;
  parameters?: Record<string, unknown>;
  ignoreErrorCodesMatching?: string;
}

/** The calls made so far: resource → the resolved `Update` text CloudFormation would compare. */
export interface DeployTimeCallsState {
  readonly assembly: LocalAssembly;
  readonly made: ReadonlyMap<string, string>;
}

/**
 * Makes the app's deploy-time SDK calls (aws-cdk-lib's AwsCustomResource:
 * the routing seed, cell registrations) against local DynamoDB, in deploy
 * order, as CloudFormation would: `Create` on the first deploy; after that
 * `Update` where the parameters changed, and `Delete` for resources that are
 * gone (a cell removed from the context deregisters). DynamoDB is the only
 * service they call.
 */
export async function runDeployTimeCalls(
  client: dynamodb.DynamoDBClient,
  assembly: LocalAssembly,
  previous?: DeployTimeCallsState,
): Promise<DeployTimeCallsState> {
  const made = new Map<string, string>();
  const keyOf = (call: LocalSdkCall) => `${call.stackName}/${call.logicalId}`;
  for (const call of assembly.sdkCalls) {
    const key = keyOf(call);
    const update = resolveValue(call.update, call.stackName, assembly);
    made.set(key, update);
    if (!previous?.made.has(key)) {
      await makeCall(client, key, resolveValue(call.create, call.stackName, assembly));
    } else if (previous.made.get(key) !== update) {
      await makeCall(client, key, update);
    }
  }
  for (const call of previous?.assembly.sdkCalls ?? []) {
    if (made.has(keyOf(call)) || call.delete === undefined) continue;
    await makeCall(client, keyOf(call), resolveValue(call.delete, call.stackName, previous!.assembly));
  }
  return { assembly, made };
}

async function makeCall(client: dynamodb.DynamoDBClient, where: string, text: string): Promise<void> {
  const call = JSON.parse(text) as SdkCall;
  if (call.service.toLowerCase() !== 'dynamodb' && call.service !== '@aws-sdk/client-dynamodb') {
    throw new Error(`${where}: the local runtime makes deploy-time calls to DynamoDB only, not ${call.service}`);
  }
  const name = `${call.action.charAt(0).toUpperCase()}${call.action.slice(1).replace(/Command$/, '')}Command`;
  const Command = (dynamodb as unknown as Record<string, new (input: unknown) => dynamodb.PutItemCommand>)[name];
  if (typeof Command !== 'function') throw new Error(`${where}: DynamoDB has no action ${call.action}`);
  try {
    await client.send(new Command(call.parameters ?? {}));
  } catch (error) {
    const code = (error as Error).name;
    if (call.ignoreErrorCodesMatching && new RegExp(call.ignoreErrorCodesMatching).test(code)) return;
    throw new Error(`${where}: ${call.action} failed: ${code}: ${(error as Error).message}`);
  }
}
