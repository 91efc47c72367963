import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createObservability, instrument, DATA_PLANE, parseEnvironment, requiredVariables, sdkClientConfig } from '@item-master/shared';
import type { PreTokenGenerationV3TriggerEvent } from 'aws-lambda';
import { ControlPlaneReader } from '../../routing/reader.ts';
import { addTenantClaim } from './claims.ts';

const observability = createObservability();
// One variable to check: no zod of its own beside the zod/mini of the control plane's records.
const { CONTROL_PLANE_TABLE } = parseEnvironment('tenant claims', requiredVariables('CONTROL_PLANE_TABLE'));
const store = new ControlPlaneReader(observability.tracer.captureAWSv3Client(new DynamoDBClient(sdkClientConfig(DATA_PLANE))), CONTROL_PLANE_TABLE);

// A client's tenant never changes while the client exists: remember it for the life of the instance.
const tenants = new Map<string, string>();
async function tenantOf(clientId: string): Promise<string | undefined> {
  const known = tenants.get(clientId);
  if (known !== undefined) return known;
  const binding = await store.clientBinding(clientId);
  if (binding) tenants.set(clientId, binding.tenantId);
  return binding?.tenantId;
}

export const handler = instrument<PreTokenGenerationV3TriggerEvent, PreTokenGenerationV3TriggerEvent>(observability, async (event) => {
  observability.logger.appendKeys({ clientId: event.callerContext.clientId, triggerSource: event.triggerSource });
  try {
    return await addTenantClaim(event, tenantOf);
  } catch (error) {
    observability.logger.warn('token refused', { error });
    throw error;
  }
});
