import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { ChangePublisher } from '../../lib/change-publisher.ts';
import { LiveUpdatesReference } from '../../lib/live-updates.ts';
import { liveParameter } from '../../layers/shared/src/contracts/names.ts';
import { bareStacks, app, rights, functionOf, cellParts } from '../support/bare-stack.ts';

const bareStack = bareStacks();

describe('ChangePublisher', () => {
  it("reads its table's stream with partial batch failures, gives up on old changes into its failure queue, and may only publish", () => {
    const stack = bareStack();
    const { sharedLayer, table } = cellParts(stack);
    const failures = new Queue(stack, 'PublishFailures');
    new ChangePublisher(stack, 'Publisher', {
      cellId: 'north',
      sharedLayer,
      table,
      live: LiveUpdatesReference.fromParameters(stack, app),
      failures,
      maxRecordAge: Duration.minutes(10),
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataTable'), 'StreamArn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 600,
      StartingPosition: 'LATEST',
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PublishFailures'), 'Arn'] } } },
    });
    const env = functionOf(template, 'Publisher').Properties.Environment.Variables;
    const parameters = template.toJSON().Parameters;
    expect(parameters[env.CONNECTIONS_TABLE.Ref].Default).toBe(liveParameter(app, 'connections-table'));
    const url = env.CALLBACK_URL['Fn::Join'][1];
    expect([url[0], parameters[url[1].Ref].Default, url.at(-1)]).toEqual(['https://', liveParameter(app, 'api-id'), '/live']);
    const granted = rights(template, 'PublisherRole').filter((r) => !/^(logs|xray):/.test(r.actions[0]!));
    expect(granted).toEqual(
      expect.arrayContaining([
        {
          actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
          resource: expect.stringMatching(/DataTable.*StreamArn/),
        },
        { actions: ['dynamodb:Query'], resource: expect.stringMatching(/liveconnectionstable.*\/index\/ByTenant"/) },
        { actions: ['dynamodb:BatchWriteItem', 'dynamodb:Query'], resource: expect.stringMatching(/liveconnectionstable[^/]*\}\]\]\}$/) },
        { actions: ['execute-api:ManageConnections'], resource: expect.stringMatching(/liveapiid.*\/live\/POST\/@connections\/\*"/) },
        { actions: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'], resource: expect.stringMatching(/PublishFailures/) },
      ]),
    );
    expect(granted).toHaveLength(5);
  });
});
