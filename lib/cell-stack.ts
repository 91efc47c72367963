import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { CellTable } from './cell-table.ts';
import { type AppConfig, isProduction } from './config.ts';
import { cellApiFunctionName } from './naming.ts';
import { ServiceFunction } from './service-function.ts';
import { SharedLayer } from './shared-layer.ts';

export interface CellStackProps extends StackProps {
  readonly config: AppConfig;
  /** This cell's id, one of `config.cells`. */
  readonly cellId: string;
}

/**
 * One cell: a complete, independent copy of the data plane that owns a slice
 * of the tenants. It references no other cell and no control-plane resource;
 * the router reaches its API function by its well-known name.
 */
export class CellStack extends Stack {
  public readonly cellId: string;
  public readonly table: CellTable;
  public readonly api: ServiceFunction;

  constructor(scope: Construct, id: string, props: CellStackProps) {
    super(scope, id, props);
    const { config, cellId } = props;
    this.cellId = cellId;
    const prod = isProduction(config);

    this.table = new CellTable(this, 'Data', { retain: prod });
    const sharedLayer = new SharedLayer(this, 'SharedLayer');

    this.api = new ServiceFunction(this, 'Api', {
      entry: 'functions/cell-api/index.ts',
      description: `Items API of ${cellId}`,
      serviceName: 'cell-api',
      functionName: cellApiFunctionName(config, cellId),
      cellId,
      sharedLayer,
      logRetention: config.logRetentionDays,
      logRemovalPolicy: prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      environment: { TABLE_NAME: this.table.table.tableName },
    });
    this.table.grantItemAccess(this.api);
  }
}
