import { TENANT_CLAIM } from '@item-master/shared';
import type { PreTokenGenerationV3TriggerEvent } from 'aws-lambda';

/** Cognito shows the client this message when it refuses the token. */
export class UnboundClientError extends Error {
  constructor(readonly clientId: string) {
    super(`app client ${clientId} is not bound to a tenant`);
    this.name = 'UnboundClientError';
  }
}

/**
 * What the pre-token-generation trigger does for every token Cognito is
 * about to issue: look up the tenant the asking client is bound to and
 * write it into the access token. A client bound to no tenant gets no token
 * at all, so every token the router accepts names its tenant.
 */
export async function addTenantClaim(
  event: PreTokenGenerationV3TriggerEvent,
  tenantOf: (clientId: string) => Promise<string | undefined>,
): Promise<PreTokenGenerationV3TriggerEvent> {
  const { clientId } = event.callerContext;
  const tenantId = await tenantOf(clientId);
  if (tenantId === undefined) throw new UnboundClientError(clientId);
  return {
    ...event,
    response: {
      ...event.response,
      claimsAndScopeOverrideDetails: {
        ...event.response.claimsAndScopeOverrideDetails,
        accessTokenGeneration: {
          ...event.response.claimsAndScopeOverrideDetails?.accessTokenGeneration,
          claimsToAddOrOverride: { [TENANT_CLAIM]: tenantId },
        },
      },
    },
  };
}
