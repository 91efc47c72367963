import { Arn, Aws, Stack, Validations } from 'aws-cdk-lib';
import { WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, ProjectionType, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { TENANT_INDEX, TTL_ATTRIBUTE } from '../layers/shared/src/contracts/connections.ts';
import type { AppConfig } from './config.ts';
import { LIVE_STAGE_NAME, liveParameter } from '../layers/shared/src/contracts/names.ts';
import { nagResourceName } from './nag.ts';
import { pkSkTable } from './pk-sk-table.ts';
import { ServiceFunction } from './service-function.ts';
import type { SharedLayer } from './shared-layer.ts';

export interface LiveUpdatesProps {
  /**
   * The API's name in the API Gateway console.
   * @default - the construct's id
   */
  readonly apiName?: string;
  readonly sharedLayer: SharedLayer;
  /** The user pool whose tokens `$connect` accepts (the router's). */
  readonly userPoolId: string;
  /** The pool's resource server: scopes arrive as `<identifier>/<scope>`. */
  readonly resourceServerId: string;
  /**
   * Steady-state requests per second the stage accepts (connects and frames).
   * @default 500
   */
  readonly rateLimit?: number;
  /** @default 1000 */
  readonly burstLimit?: number;
}

/**
 * Live updates at the front door: an API Gateway WebSocket API whose
 * `$connect` verifies the same tokens as the router (a REQUEST authorizer
 * reading `?token=`), one Lambda integration per route (`$connect`,
 * `$disconnect`, `subscribe`, `unsubscribe`, `$default`), the client's
 * frames answered on the connection, and the table of connections and their
 * subscriptions (TTL, and the `ByTenant` index the cells' publishers query).
 * The cells post to connections through the stage's management API.
 */
export class LiveUpdates extends Construct {
  public readonly table: TableV2;
  public readonly api: WebSocketApi;
  public readonly stage: WebSocketStage;
  public readonly authorizerFunction: ServiceFunction;
  public readonly socketFunction: ServiceFunction;

  constructor(scope: Construct, id: string, props: LiveUpdatesProps) {
    super(scope, id);

    this.table = pkSkTable(this, 'Connections', {
      timeToLiveAttribute: TTL_ATTRIBUTE,
      globalSecondaryIndexes: [
        {
          indexName: TENANT_INDEX.name,
          partitionKey: { name: TENANT_INDEX.partitionKey, type: AttributeType.STRING },
          sortKey: { name: TENANT_INDEX.sortKey, type: AttributeType.STRING },
          projectionType: ProjectionType.INCLUDE,
          nonKeyAttributes: [...TENANT_INDEX.include],
        },
      ],
    });

    this.authorizerFunction = new ServiceFunction(this, 'Authorizer', {
      entry: 'functions/live-authorizer/index.ts',
      description: 'Verifies the token of a live-updates connection ($connect)',
      serviceName: 'live-authorizer',
      sharedLayer: props.sharedLayer,
      environment: { USER_POOL_ID: props.userPoolId, AUTH_RESOURCE_SERVER: props.resourceServerId },
    });
    this.socketFunction = new ServiceFunction(this, 'Socket', {
      entry: 'functions/live-socket/index.ts',
      description: 'Opens and closes live-updates connections and handles their subscribe and unsubscribe frames',
      serviceName: 'live-socket',
      sharedLayer: props.sharedLayer,
    });
    // The table only, not its index: the socket reads and writes connections by their own partition.
    this.socketFunction.bindTable('CONNECTIONS_TABLE', this.table, (grantee) =>
      Grant.addToPrincipal({
        grantee,
        actions: ['dynamodb:BatchWriteItem', 'dynamodb:PutItem', 'dynamodb:Query'],
        resourceArns: [this.table.tableArn],
      }),
    );

    // One integration per route: each route's invocations are its own in API Gateway's metrics and logs.
    const integration = (route: string) => new WebSocketLambdaIntegration(`${route}Integration`, this.socketFunction);
    this.api = new WebSocketApi(this, 'Api', {
      apiName: props.apiName ?? id,
      description: 'Live updates of items and orders',
      routeSelectionExpression: '$request.body.action',
      connectRouteOptions: {
        integration: integration('Connect'),
        authorizer: new WebSocketLambdaAuthorizer('TokenAuthorizer', this.authorizerFunction, {
          identitySource: ['route.request.querystring.token'],
        }),
      },
      disconnectRouteOptions: { integration: integration('Disconnect') },
      defaultRouteOptions: { integration: integration('Default'), returnResponse: true },
    });
    this.api.addRoute('subscribe', { integration: integration('Subscribe'), returnResponse: true });
    this.api.addRoute('unsubscribe', { integration: integration('Unsubscribe'), returnResponse: true });

    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: LIVE_STAGE_NAME,
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 500, burstLimit: props.burstLimit ?? 1000 },
    });
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'A WebSocket API authorizes on $connect only; every later route runs on the connection $connect authorized',
    });
    Validations.of(this.stage).acknowledge({
      id: 'AwsSolutions-APIG1',
      reason:
        'WebSocket access logs need the account-wide API Gateway CloudWatch role (AWS::ApiGateway::Account), which one app must not own; the socket function logs every event with its connection id',
    });
  }

  /** The stage's `wss://` URL clients connect to. */
  get url(): string {
    return this.stage.url;
  }
}

/**
 * The live-updates API as a cell finds it: by the control plane's well-known
 * SSM parameters, never by a stack reference, with what a cell's change
 * publisher may do there.
 */
export class LiveUpdatesReference {
  /** The API's id and its connections table's name, read from SSM at deploy time. */
  static fromParameters(scope: Construct, config: Pick<AppConfig, 'appName' | 'stage'>): LiveUpdatesReference {
    return new LiveUpdatesReference(
      scope,
      StringParameter.valueForStringParameter(scope, liveParameter(config, 'api-id')),
      StringParameter.valueForStringParameter(scope, liveParameter(config, 'connections-table')),
    );
  }

  /** Where the `@connections` management API answers: the live stage of the API. */
  public readonly callbackUrl: string;

  private constructor(
    private readonly scope: Construct,
    public readonly apiId: string,
    public readonly connectionsTableName: string,
  ) {
    this.callbackUrl = `https://${apiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/${LIVE_STAGE_NAME}`;
  }

  /**
   * A publisher's rights, and nothing more: read a tenant's subscriptions
   * (the `ByTenant` index), delete a gone connection's records, and POST to
   * connections of the live stage.
   */
  grantPublish(grantee: IGrantable): Grant {
    const stack = Stack.of(this.scope);
    const table = TableV2.fromTableName(this.scope, 'ConnectionsTable', this.connectionsTableName).tableArn;
    const post = Arn.format({ service: 'execute-api', resource: this.apiId, resourceName: `${LIVE_STAGE_NAME}/POST/@connections/*` }, stack);
    const grant = Grant.addToPrincipal({ grantee, actions: ['dynamodb:Query'], resourceArns: [`${table}/index/${TENANT_INDEX.name}`] })
      .combine(Grant.addToPrincipal({ grantee, actions: ['dynamodb:Query', 'dynamodb:BatchWriteItem'], resourceArns: [table] }))
      .combine(Grant.addToPrincipal({ grantee, actions: ['execute-api:ManageConnections'], resourceArns: [post] }));
    if (Construct.isConstruct(grantee.grantPrincipal)) {
      Validations.of(grantee.grantPrincipal).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${nagResourceName(stack, post)}]`,
        reason: 'Connection ids are made by API Gateway at run time; the publisher may only POST, and only to the live stage',
      });
    }
    return grant;
  }
}
