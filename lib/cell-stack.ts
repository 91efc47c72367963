import { Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { CellTable } from './cell-table.ts';
import { CellRegistration } from './cell-registration.ts';
import { type AppConfig, cellWeight } from './config.ts';
import { LiveUpdatesReference } from './live-updates.ts';
import { cellApiFunctionName, controlPlaneTableParameter } from '../layers/shared/src/contracts/names.ts';
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
  public readonly api: ServiceFunction;
  public readonly orders: OrderWorkflow;
  public readonly eventsQueue: Queue;
  public readonly publisher: ServiceFunction;

  constructor(scope: Construct, id: string, props: CellStackProps) {
    super(scope, id, props);
    const { config, cellId } = props;
    this.cellId = cellId;

    this.table = new CellTable(this, 'Data');
    const sharedLayer = new SharedLayer(this, 'SharedLayer');

    const deadLetters = this.failureQueue('OrderEventsDeadLetters', 'the dead-letter queue of the order events queue');
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

    this.api = new ServiceFunction(this, 'Api', {
      entry: 'functions/cell-api/index.ts',
      description: `Items and orders API of ${cellId}`,
      serviceName: 'cell-api',
      functionName: cellApiFunctionName(config, cellId),
      cellId,
      sharedLayer,
      environment: { TABLE_NAME: this.table.table.tableName, STATE_MACHINE_ARN: this.orders.stateMachine.stateMachineArn },
    });
    this.table.grantApiAccess(this.api);
    this.orders.stateMachine.grantStartExecution(this.api);

    this.publisher = this.changePublisher(config, cellId, sharedLayer);

    new CellRegistration(this, 'Registration', {
      controlPlaneTableParameter: controlPlaneTableParameter(config),
      cell: {
        cellId,
        weight: cellWeight(config, cellId),
        apiFunctionArn: this.api.functionArn,
        tableName: this.table.table.tableName,
      },
    });
  }

  /**
   * The live-updates publisher: this cell's table stream to the subscribers'
   * WebSocket connections. It finds the control plane's API and connections
   * table by well-known SSM parameter names, like the registration, and may
   * touch nothing else: its own stream, the connections table (subscriber
   * lookups and the removal of gone connections) and the stage's
   * `@connections` endpoint.
   */
  private changePublisher(config: AppConfig, cellId: string, sharedLayer: SharedLayer): ServiceFunction {
    const live = LiveUpdatesReference.fromParameters(this, config);
    const publisher = new ServiceFunction(this, 'Publisher', {
      entry: 'functions/publisher/index.ts',
      description: `Publishes the item and order changes of ${cellId} to live-updates subscribers`,
      serviceName: 'publisher',
      cellId,
      sharedLayer,
      timeout: Duration.seconds(30),
      environment: { CONNECTIONS_TABLE: live.connectionsTableName, CALLBACK_URL: live.callbackUrl },
    });
    const failures = this.failureQueue('PublishFailures', "the on-failure destination of the publisher's stream");
    publisher.addEventSource(
      new DynamoEventSource(this.table.table, {
        startingPosition: StartingPosition.LATEST,
        batchSize: 100,
        maxBatchingWindow: Duration.millis(0),
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: 5,
        // Live updates are worth little late: an hour-old change goes to the failure queue instead.
        maxRecordAge: Duration.hours(1),
        onFailure: new SqsDlq(failures),
      }),
    );
    live.grantPublish(publisher);
    return publisher;
  }

  /** Where failed messages or records are kept for two weeks: a queue that is itself a failure queue, so it has none of its own. */
  private failureQueue(id: string, what: string): Queue {
    const queue = new Queue(this, id, { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason: `This queue is ${what}` });
    return queue;
  }
}
