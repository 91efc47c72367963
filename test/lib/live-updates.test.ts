import { Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import { LiveUpdatesReference } from '../../lib/live-updates.ts';
import { liveParameter } from '../../layers/shared/src/contracts/names.ts';
import { bareStacks, app, rights } from '../support/bare-stack.ts';

const bareStack = bareStacks();

describe('LiveUpdatesReference', () => {
  it('finds the API by its SSM parameters and grants a publisher exactly its rights', () => {
    const stack = bareStack();
    const live = LiveUpdatesReference.fromParameters(stack, app);
    const role = new Role(stack, 'Publisher', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const grant = live.grantPublish(role);
    expect(grant.success).toBe(true);

    const template = Template.fromStack(stack);
    const parameters = Object.values(template.toJSON().Parameters ?? {}).map((p: any) => p.Default);
    expect(parameters).toEqual(expect.arrayContaining([liveParameter(app, 'api-id'), liveParameter(app, 'connections-table')]));
    expect(rights(template, 'Publisher')).toEqual([
      { actions: ['dynamodb:Query'], resource: expect.stringMatching(/\/index\/ByTenant"/) },
      { actions: ['dynamodb:BatchWriteItem', 'dynamodb:Query'], resource: expect.stringMatching(/liveconnectionstable[^/]*\}\]\]\}$/) },
      { actions: ['execute-api:ManageConnections'], resource: expect.stringMatching(/\/live\/POST\/@connections\/\*"/) },
    ]);
    expect(live.callbackUrl).toContain('.execute-api.');
  });
});
