import { Annotations, CfnOutput, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { type AppConfig, isProduction } from './config.ts';
import { ControlPlaneTable } from './control-plane-table.ts';
import { FrontDoor } from './front-door.ts';
import { HealthDashboard } from './health-dashboard.ts';
import { Identity } from './identity.ts';
import { LiveUpdates } from './live-updates.ts';
import {
  alarmTopicName,
  controlPlaneHealthAlarmName,
  controlPlaneTableParameter,
  identityParameter,
  LIVE_STAGE_NAME,
  liveParameter,
  metricsNamespace,
  moveWorkflowParameter,
  stackName,
} from '../layers/shared/src/contracts/names.ts';
import { notifyTopic } from './alarms.ts';
import { ControlPlaneAlarms } from './control-plane-alarms.ts';
import { CanaryDeployment } from './canary-deployment.ts';
import { MoveWorkflow } from './move-workflow.ts';
import { RoutingSeed } from './routing-seed.ts';
import { Router } from './router.ts';
import { RouterFleetTable } from './router-fleet.ts';
import { SharedLayer } from './shared-layer.ts';
import { WebAcl } from './web-acl.ts';

/** The warning a deploy without a certificate gets (acknowledged off AWS, see local/synthesis.ts). */
export const NO_CERTIFICATE_WARNING = 'front-door:no-certificate';

export interface ControlPlaneStackProps extends StackProps {
  readonly config: AppConfig;
}

/**
 * The control plane and front door, one for the whole service: the table
 * holding the cell registry and the versioned bucket map, the identity
 * provider, the ALB with its web ACL, and the router that checks each
 * request's token and sends it to its tenant's cell.
 */
export class ControlPlaneStack extends Stack {
  public readonly table: ControlPlaneTable;
  public readonly router: Router;
  public readonly frontDoor: FrontDoor;
  public readonly identity: Identity;
  public readonly live: LiveUpdates;
  public readonly moves: MoveWorkflow;
  /** The front door's alarms and its composite alarm. */
  public readonly alarms: ControlPlaneAlarms;
  /** The router's serving alias, which the ALB targets, and the CodeDeploy group that moves it. */
  public readonly routerDeployment: CanaryDeployment;
  /** The app's dashboard: the front door and a row per cell. */
  public readonly dashboard: HealthDashboard;

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps) {
    super(scope, id, props);
    const { config } = props;
    const prod = isProduction(config);
    const sharedLayer = new SharedLayer(this, 'SharedLayer');

    this.table = new ControlPlaneTable(this, 'Registry');
    new StringParameter(this, 'TableNameParameter', {
      parameterName: controlPlaneTableParameter(config),
      stringValue: this.table.table.tableName,
      description: 'The control-plane table; cells register in it on deploy',
    });
    new RoutingSeed(this, 'RoutingSeed', { table: this.table.table, cellIds: config.cells });
    this.moves = new MoveWorkflow(this, 'Moves', { app: config, sharedLayer, table: this.table, copySegments: config.moveCopySegments });
    new StringParameter(this, 'MoveWorkflowParameter', {
      parameterName: moveWorkflowParameter(config),
      stringValue: this.moves.stateMachine.stateMachineArn,
      description: 'The move workflow, which the cells CLI starts for move and apply',
    });

    this.identity = new Identity(this, 'Identity', {
      table: this.table,
      sharedLayer,
      resourceServerId: config.appName,
      domainPrefix: Identity.domainPrefix(config.appName, config.stage),
    });
    this.publishFacts('Identity', (name) => identityParameter(config, name), "The identity provider's", 'for the cells CLI', {
      'user-pool-id': this.identity.userPool.userPoolId,
      'resource-server': this.identity.resourceServerId,
      'token-url': this.identity.tokenUrl,
    });

    this.router = new Router(this, 'Router', {
      app: config,
      cells: config.cells,
      sharedLayer,
      table: this.table,
      identity: this.identity,
      refreshSeconds: config.routingRefreshSeconds,
      fleet: new RouterFleetTable(this, 'RouterFleet'),
      defaultQuota: { rate: config.tenantRate, burst: config.tenantBurst },
      reservedConcurrency: config.concurrency.router,
    });

    this.routerDeployment = new CanaryDeployment(this, 'RouterDeployment', { fn: this.router, trafficShift: config.lambdaTrafficShift });
    this.frontDoor = new FrontDoor(this, 'FrontDoor', {
      // The ALB sends requests to the alias: a new router version gets them only as CodeDeploy shifts them to it.
      router: this.routerDeployment.alias,
      certificateArn: config.certificateArn,
      autoDeleteAccessLogs: !prod,
    });
    const webAcl = config.waf
      ? new WebAcl(this, 'WebAcl', {
          resourceArn: this.frontDoor.loadBalancer.loadBalancerArn,
          metricPrefix: `${config.appName}-${config.stage}`,
          rateLimit: config.wafRateLimit,
        })
      : undefined;
    if (!config.certificateArn) {
      Annotations.of(this.frontDoor).addWarningV2(
        NO_CERTIFICATE_WARNING,
        'No certificateArn in context: the ALB serves plain HTTP only. Pass -c certificateArn=arn:aws:acm:... for HTTPS.',
      );
    }
    this.live = new LiveUpdates(this, 'Live', {
      apiName: stackName(config, 'live'),
      sharedLayer,
      userPoolId: this.identity.userPool.userPoolId,
      resourceServerId: this.identity.resourceServerId,
    });
    this.publishFacts('Live', (name) => liveParameter(config, name), 'The live-updates', "for the cells' publishers", {
      'api-id': this.live.api.apiId,
      'connections-table': this.live.table.tableName,
    });

    this.alarms = new ControlPlaneAlarms(this, 'Alarms', {
      healthAlarmName: controlPlaneHealthAlarmName(config),
      router: this.router,
      loadBalancer: this.frontDoor.loadBalancer,
      liveApiId: this.live.api.apiId,
      liveStage: LIVE_STAGE_NAME,
      metricsNamespace: metricsNamespace(config),
      thresholds: config.alarmThresholds,
    });
    this.routerDeployment.rollBackOn(this.alarms.health, Object.values(this.alarms.alarms));
    if (config.alarmEmail) {
      const topic = new Topic(this, 'AlarmTopic', {
        topicName: alarmTopicName(config),
        enforceSSL: true,
        displayName: `${config.appName} ${config.stage} alarms`,
      });
      topic.addSubscription(new EmailSubscription(config.alarmEmail));
      Validations.of(topic).acknowledge({
        id: 'AwsSolutions-SNS2',
        reason: "Alarm notifications carry no data beyond alarm names and states; SNS's AWS-managed key would lock CloudWatch out",
      });
      notifyTopic(this.alarms.health, alarmTopicName(config));
    }
    this.dashboard = new HealthDashboard(this, 'Health', {
      app: config,
      cells: config.cells,
      router: this.router,
      loadBalancer: this.frontDoor.loadBalancer,
      frontDoorHealth: this.alarms.health,
      ...(webAcl && { wafMetricName: webAcl.metricName, region: config.region }),
    });

    new CfnOutput(this, 'Url', { value: this.frontDoor.url, description: 'The service endpoint' });
    new CfnOutput(this, 'LiveUrl', { value: this.live.url, description: 'Live updates: connect with ?token=<access token>' });
    new CfnOutput(this, 'TokenUrl', { value: this.identity.tokenUrl, description: 'Client-credentials token endpoint' });
  }
  /** Facts other stacks and tools read at deploy or run time, one SSM parameter each, under their well-known names. */
  private publishFacts<Name extends string>(
    idPrefix: string,
    parameterName: (name: Name) => string,
    subject: string,
    audience: string,
    facts: Record<Name, string>,
  ): void {
    for (const [name, value] of Object.entries(facts) as Array<[Name, string]>) {
      new StringParameter(this, `${idPrefix}-${name}`, {
        parameterName: parameterName(name),
        stringValue: value,
        description: `${subject} ${name.replaceAll('-', ' ')}, ${audience}`,
      });
    }
  }
}
