import type { PreTokenGenerationV3TriggerEvent } from 'aws-lambda';

/** The event Cognito sends a V3_0 pre-token-generation trigger when a client asks for a client-credentials token. */
export function clientCredentialsEvent(clientId: string): PreTokenGenerationV3TriggerEvent {
  return {
    version: '3',
    region: 'us-east-1',
    userPoolId: 'us-east-1_TestPool1',
    triggerSource: 'TokenGeneration_ClientCredentials',
    userName: clientId,
    callerContext: { awsSdkVersion: 'aws-sdk-unknown-unknown', clientId },
    request: { userAttributes: {}, groupConfiguration: { groupsToOverride: [], iamRolesToOverride: [] }, scopes: ['item-master/items.read'] },
    response: { claimsAndScopeOverrideDetails: {} },
  };
}
