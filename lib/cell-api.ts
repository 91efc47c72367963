import { Duration } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { CELL_API_TIMEOUT_SECONDS } from '../layers/shared/src/contracts/cell-table.ts';
import type { CellTable } from './cell-table.ts';
import type { OrderWorkflow } from './order-workflow.ts';
import { ServiceFunction } from './service-function.ts';
import type { SharedLayer } from './shared-layer.ts';

export interface CellApiProps {
  /** The cell it serves. */
  readonly cellId: string;
  /** Its fixed name: the router invokes it by name (`cellApiFunctionName`). */
  readonly functionName: string;
  readonly sharedLayer: SharedLayer;
  /** The cell's table: the API reads and writes items and orders there. */
  readonly table: CellTable;
  /** The cell's order saga: the API starts one execution per order. */
  readonly orders: OrderWorkflow;
  /**
   * Its reserved concurrency: the most the cell serves at once, whoever sends (lib/concurrency.ts).
   * @default - none
   */
  readonly reservedConcurrency?: number;
}

/**
 * A cell's items and orders API (functions/cell-api): the function the
 * router invokes, with its table and the right to start the cell's order
 * workflow, and nothing else.
 */
export class CellApi extends ServiceFunction {
  constructor(scope: Construct, id: string, props: CellApiProps) {
    super(scope, id, {
      entry: 'functions/cell-api/index.ts',
      description: `Items and orders API of ${props.cellId}`,
      serviceName: 'cell-api',
      functionName: props.functionName,
      cellId: props.cellId,
      sharedLayer: props.sharedLayer,
      // On every request's path: bundled, it started sooner than from the layer in every full bench run (BENCHMARKS.md, "Bundling").
      sharedCode: 'bundled',
      reservedConcurrency: props.reservedConcurrency,
      // The ownership fence waits this long for requests already let through (contracts/cell-table.ts).
      timeout: Duration.seconds(CELL_API_TIMEOUT_SECONDS),
    });
    this.bindTable('TABLE_NAME', props.table.table, (grantee) => props.table.grantApiAccess(grantee));
    this.addEnvironment('STATE_MACHINE_ARN', props.orders.stateMachine.stateMachineArn);
    props.orders.stateMachine.grantStartExecution(this);
  }
}
