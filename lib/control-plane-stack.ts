import { Annotations, Arn, ArnFormat, CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { type AppConfig, isProduction } from './config.ts';
import { FrontDoor } from './front-door.ts';
import { cellApiFunctionName } from './naming.ts';
import { ServiceFunction } from './service-function.ts';
import { SharedLayer } from './shared-layer.ts';

export interface ControlPlaneStackProps extends StackProps {
  readonly config: AppConfig;
}

/**
 * The control plane and front door, one for the whole service: the ALB and
 * the router that sends each tenant's requests to its cell.
 */
export class ControlPlaneStack extends Stack {
  public readonly router: ServiceFunction;
  public readonly frontDoor: FrontDoor;

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps) {
    super(scope, id, props);
    const { config } = props;
    const prod = isProduction(config);
    const sharedLayer = new SharedLayer(this, 'SharedLayer');

    // Cells are reached by their API function's well-known name, never by a
    // reference into a cell stack, so each cell deploys and deletes alone.
    const cellFunctions = Object.fromEntries(
      config.cells.map((cellId) => [cellId, cellApiFunctionName(config, cellId)]),
    );
    this.router = new ServiceFunction(this, 'Router', {
      entry: 'functions/router/index.ts',
      description: 'Routes each request to the cell that owns its tenant',
      serviceName: 'router',
      sharedLayer,
      logRetention: config.logRetentionDays,
      logRemovalPolicy: prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      environment: { CELL_FUNCTIONS: JSON.stringify(cellFunctions) },
    });
    this.router.addToRolePolicy(
      new PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: Object.values(cellFunctions).map((functionName) =>
          Arn.format({ service: 'lambda', resource: 'function', resourceName: functionName, arnFormat: ArnFormat.COLON_RESOURCE_NAME }, this),
        ),
      }),
    );

    this.frontDoor = new FrontDoor(this, 'FrontDoor', {
      router: this.router,
      certificateArn: config.certificateArn,
      retain: prod,
    });
    if (!config.certificateArn) {
      Annotations.of(this.frontDoor).addWarningV2(
        'item-master:no-certificate',
        'No certificateArn in context: the ALB serves plain HTTP only. Pass -c certificateArn=arn:aws:acm:... for HTTPS.',
      );
    }
    new CfnOutput(this, 'Url', { value: this.frontDoor.url, description: 'The service endpoint' });
  }
}
