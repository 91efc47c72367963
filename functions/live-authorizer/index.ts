import { createObservability, instrument, TokenVerifier, tokenVerifierOptionsFromEnv } from '@item-master/shared';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { authorizeConnect } from './authorizer.ts';

const observability = createObservability();
const verifier = new TokenVerifier(tokenVerifierOptionsFromEnv(process.env));
// The pool's signing keys at init; if they cannot be fetched, the first connects try again.
await verifier.hydrate().catch((error: unknown) => observability.logger.warn('signing keys not fetched at init', { error }));

export const handler = instrument<APIGatewayRequestAuthorizerEvent, APIGatewayAuthorizerResult>(observability, async (event) => {
  try {
    const result = await authorizeConnect(verifier, event);
    observability.logger.appendKeys({ tenantId: result.context?.tenantId, clientId: result.principalId });
    observability.logger.info('connection authorized');
    return result;
  } catch (error) {
    observability.logger.info('connection refused', { reason: (error as Error).message });
    throw error;
  }
});
