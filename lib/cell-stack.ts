import { Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { CellTable } from './cell-table.ts';
import { CellRegistration } from './cell-registration.ts';
import { type AppConfig, cellWeight, isProduction, logSettings } from './config.ts';
import { cellApiFunctionName, controlPlaneTableParameter } from './naming.ts';
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

  constructor(scope: Construct, id: string, props: CellStackProps) {
    super(scope, id, props);
    const { config, cellId } = props;
    this.cellId = cellId;
    const prod = isProduction(config);

    this.table = new CellTable(this, 'Data', { retain: prod });
    const sharedLayer = new SharedLayer(this, 'SharedLayer');

    const deadLetters = new Queue(this, 'OrderEventsDeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(deadLetters).acknowledge({ id: 'AwsSolutions-SQS3', reason: 'This queue is the dead-letter queue of the order events queue' });
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
      ...logSettings(config),
    });
    this.orders = new OrderWorkflow(this, 'Orders', {
      table: this.table.table,
      paymentFunction: payment,
      eventsQueue: this.eventsQueue,
      ...logSettings(config),
    });

    this.api = new ServiceFunction(this, 'Api', {
      entry: 'functions/cell-api/index.ts',
      description: `Items and orders API of ${cellId}`,
      serviceName: 'cell-api',
      functionName: cellApiFunctionName(config, cellId),
      cellId,
      sharedLayer,
      ...logSettings(config),
      environment: { TABLE_NAME: this.table.table.tableName, STATE_MACHINE_ARN: this.orders.stateMachine.stateMachineArn },
    });
    this.table.grantApiAccess(this.api);
    this.orders.stateMachine.grantStartExecution(this.api);

    new CellRegistration(this, 'Registration', {
      controlPlaneTableParameter: controlPlaneTableParameter(config),
      cell: {
        cellId,
        weight: cellWeight(config, cellId),
        apiFunctionArn: this.api.functionArn,
        tableName: this.table.table.tableName,
      },
      ...logSettings(config),
    });
  }
}
