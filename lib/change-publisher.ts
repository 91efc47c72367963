import { Duration } from 'aws-cdk-lib';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { CellTable } from './cell-table.ts';
import type { LiveUpdatesReference } from './live-updates.ts';
import { ServiceFunction } from './service-function.ts';
import type { SharedLayer } from './shared-layer.ts';

export interface ChangePublisherProps {
  /** The cell whose changes it publishes. */
  readonly cellId: string;
  readonly sharedLayer: SharedLayer;
  /** The cell's table, whose stream it reads. */
  readonly table: CellTable;
  /** The control plane's live-updates API, found by its SSM parameters. */
  readonly live: LiveUpdatesReference;
  /** Where the records it could not publish go, once its retries are spent. */
  readonly failures: IQueue;
  /**
   * How old a change may be and still be published: live updates are worth
   * little late, so older ones go to `failures` instead.
   * @default Duration.hours(1)
   */
  readonly maxRecordAge?: Duration;
}

/**
 * The live-updates publisher (functions/publisher): a cell's table stream to
 * the subscribers' WebSocket connections. It may touch nothing else than its
 * stream, the connections table (subscriber lookups and the removal of gone
 * connections) and the live stage's `@connections` endpoint.
 */
export class ChangePublisher extends ServiceFunction {
  constructor(scope: Construct, id: string, props: ChangePublisherProps) {
    super(scope, id, {
      entry: 'functions/publisher/index.ts',
      description: `Publishes the item and order changes of ${props.cellId} to live-updates subscribers`,
      serviceName: 'publisher',
      cellId: props.cellId,
      sharedLayer: props.sharedLayer,
      timeout: Duration.seconds(30),
      environment: { CALLBACK_URL: props.live.callbackUrl },
    });
    this.bindTable('CONNECTIONS_TABLE', { tableName: props.live.connectionsTableName }, (grantee) => props.live.grantPublish(grantee));
    this.addEventSource(
      new DynamoEventSource(props.table.table, {
        startingPosition: StartingPosition.LATEST,
        batchSize: 100,
        maxBatchingWindow: Duration.millis(0),
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: 5,
        maxRecordAge: props.maxRecordAge ?? Duration.hours(1),
        onFailure: new SqsDlq(props.failures),
      }),
    );
  }
}
