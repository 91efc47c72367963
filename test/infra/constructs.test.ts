import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import { LiveUpdatesReference } from '../../lib/live-updates.ts';
import { liveParameter } from '../../layers/shared/src/contracts/names.ts';

/** Constructs on their own, each in a bare stack: what they grant and read, without the whole app. */
describe('LiveUpdatesReference', () => {
  it('finds the API by its SSM parameters and grants a publisher exactly its rights', () => {
    const stack = new Stack(new App(), 'Cell', { env: { account: '123456789012', region: 'eu-west-1' } });
    const config = { appName: 'shop', stage: 'dev' } as const;
    const live = LiveUpdatesReference.fromParameters(stack, config);
    const role = new Role(stack, 'Publisher', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const grant = live.grantPublish(role);
    expect(grant.success).toBe(true);

    const template = Template.fromStack(stack);
    const parameters = Object.values(template.toJSON().Parameters ?? {}).map((p: any) => p.Default);
    expect(parameters).toEqual(expect.arrayContaining([liveParameter(config, 'api-id'), liveParameter(config, 'connections-table')]));
    const [policy] = Object.values(template.findResources('AWS::IAM::Policy'));
    const statements = (policy!.Properties.PolicyDocument.Statement as any[]).map((s) => [s.Action, JSON.stringify(s.Resource)]);
    expect(statements.map(([action]) => action)).toEqual(['dynamodb:Query', ['dynamodb:Query', 'dynamodb:BatchWriteItem'], 'execute-api:ManageConnections']);
    expect(statements[0]![1]).toContain('/index/ByTenant');
    expect(statements[2]![1]).toContain('/live/POST/@connections/*');
    expect(live.callbackUrl).toContain('.execute-api.');
  });
});
