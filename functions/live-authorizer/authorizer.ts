import type { TokenVerifier } from '@item-master/shared';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';

/** What `$connect` and every later frame get in `requestContext.authorizer`. */
export interface ConnectionContext {
  readonly tenantId: string;
  readonly clientId: string;
}

/**
 * The `$connect` authorizer: the token (`?token=`, browsers cannot set
 * headers on a WebSocket) is verified as the router verifies it, with
 * `items.read`; the connection is bound to the token's tenant. Anything
 * else is "Unauthorized", which API Gateway answers with 401.
 */
export async function authorizeConnect(verifier: TokenVerifier, event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  const token = event.queryStringParameters?.token;
  if (!token) throw new Error('Unauthorized');
  const result = await verifier.verify(token, { scope: 'items.read' });
  // Keys that cannot be fetched are not the client's fault: any other error is a 500, which clients retry.
  if (!result.ok) throw new Error(result.status === 503 ? 'token verification unavailable' : 'Unauthorized');
  const context: ConnectionContext = { tenantId: result.caller.tenantId, clientId: result.caller.clientId };
  return {
    principalId: result.caller.clientId,
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }] },
    context: { ...context },
  };
}
