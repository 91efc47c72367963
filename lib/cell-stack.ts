import { Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { CanaryDeployment } from './canary-deployment.ts';
import { CellAlarms } from './cell-alarms.ts';
import { CellApi } from './cell-api.ts';
import { CellTable } from './cell-table.ts';
import { ChangePublisher } from './change-publisher.ts';
import { CellRegistration } from './cell-registration.ts';
import { type AppConfig, cellWeight } from './config.ts';
import { LiveUpdatesReference } from './live-updates.ts';
import {
  alarmTopicName,
  cellApiFunctionName,
  cellHealthAlarmName,
  controlPlaneTableParameter,
  metricsNamespace,
} from '../layers/shared/src/contracts/names.ts';
import { notifyTopic } from './alarms.ts';
import { OrderWorkflow } from './order-workflow.ts';
import { ServiceFunction } from './service-function.ts';
import { SharedLayer } from './shared-layer.ts';

export interface CellStackProps extends StackProps {
  readonly config: AppConfig;
  /** This cell's id, one of `config.cells`. */
  readonly cellId: string;
}

/**
 * One cell: a complete, independent copy of the data plane that owns a slice
 * of the tenants. It references no other cell and no control-plane resource:
 * on deploy it registers itself in the control plane's registry, which it
 * finds by a well-known SSM parameter name.
 */
export class CellStack extends Stack {
  public readonly cellId: string;
  public readonly table: CellTable;
  public readonly api: CellApi;
  public readonly orders: OrderWorkflow;
  public readonly eventsQueue: Queue;
  public readonly publisher: ChangePublisher;
  /** The cell's alarms and its composite "healthy" alarm. */
  public readonly alarms: CellAlarms;
  /** The API's serving alias, which the router invokes, and the CodeDeploy group that moves it. */
  public readonly apiDeployment: CanaryDeployment;

  constructor(scope: Construct, id: string, props: CellStackProps) {
    super(scope, id, props);
    const { config, cellId } = props;
    this.cellId = cellId;

    this.table = new CellTable(this, 'Data');
    const sharedLayer = new SharedLayer(this, 'SharedLayer');

    const deadLetters = this.failureQueue('OrderEventsDeadLetters', 'the dead-letter queue of the order events queue');
    const publishFailures = this.failureQueue('PublishFailures', "the on-failure destination of the publisher's stream");
    this.eventsQueue = new Queue(this, 'OrderEvents', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: deadLetters, maxReceiveCount: 5 },
    });
    const payment = new ServiceFunction(this, 'Payment', {
      entry: 'functions/payment/index.ts',
      description: `Charges orders of ${cellId} (simulated payment provider)`,
      serviceName: 'payment',
      cellId,
      sharedLayer,
      memorySize: 256,
    });
    this.orders = new OrderWorkflow(this, 'Orders', {
      table: this.table.table,
      paymentFunction: payment,
      eventsQueue: this.eventsQueue,
    });

    this.api = new CellApi(this, 'Api', {
      cellId,
      functionName: cellApiFunctionName(config, cellId),
      sharedLayer,
      table: this.table,
      orders: this.orders,
      reservedConcurrency: config.concurrency.cells[cellId],
    });
    this.publisher = new ChangePublisher(this, 'Publisher', {
      cellId,
      sharedLayer,
      table: this.table,
      live: LiveUpdatesReference.fromParameters(this, config),
      failures: publishFailures,
    });
    this.alarms = new CellAlarms(this, 'Health', {
      cellId,
      healthAlarmName: cellHealthAlarmName(config, cellId),
      api: this.api,
      orders: this.orders.stateMachine,
      publisher: this.publisher,
      failureQueues: { OrderEventsDeadLetters: deadLetters, PublishFailures: publishFailures },
      metricsNamespace: metricsNamespace(config),
      thresholds: config.alarmThresholds,
    });
    if (config.alarmEmail) notifyTopic(this.alarms.health, alarmTopicName(config));
    this.apiDeployment = new CanaryDeployment(this, 'ApiDeployment', { fn: this.api, trafficShift: config.lambdaTrafficShift });
    this.apiDeployment.rollBackOn(this.alarms.health, Object.values(this.alarms.alarms));

    new CellRegistration(this, 'Registration', {
      controlPlaneTableParameter: controlPlaneTableParameter(config),
      cell: {
        cellId,
        weight: cellWeight(config, cellId),
        // The router invokes the alias: a new version gets requests only as CodeDeploy shifts them to it.
        apiFunctionArn: this.apiDeployment.alias.functionArn,
        tableName: this.table.table.tableName,
      },
    });
  }

  /** Where failed messages or records are kept for two weeks: a queue that is itself a failure queue, so it has none of its own. */
  private failureQueue(id: string, what: string): Queue {
    const queue = new Queue(this, id, { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason: `This queue is ${what}` });
    return queue;
  }
}
