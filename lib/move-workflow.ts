import { Arn, ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Choice,
  Condition,
  DefinitionBody,
  Errors,
  JitterType,
  JsonPath,
  LogLevel,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { stackName, type AppIdentity } from '../layers/shared/src/contracts/names.ts';
import type { ControlPlaneTable } from './control-plane-table.ts';
import { nagResourceName } from './nag.ts';
import { ServiceFunction } from './service-function.ts';
import type { SharedLayer } from './shared-layer.ts';

export interface MoveWorkflowProps {
  /** The app and stage: the cells' tables are found by their stacks' names. */
  readonly app: AppIdentity;
  readonly sharedLayer: SharedLayer;
  /** Where the moves' records and the map are. */
  readonly table: ControlPlaneTable;
  /**
   * How long one step may run; a step hands back well before (after 60 s of
   * copying) and goes on in the next.
   * @default Duration.minutes(3)
   */
  readonly stepTimeout?: Duration;
  /**
   * Ranges of keys the clone and the catch-up's pass copy at once, in one
   * step: the moving tenants side by side, and a big tenant's keys split.
   * @default 4
   */
  readonly copySegments?: number;
}

/**
 * The control plane's move workflow: a Standard state machine that calls
 * the mover function (one step of a move, control-plane/move-engine.ts) until
 * the move is done, waiting where the step says (the fence's lead time, the
 * grace period before the source's copy is forgotten). A step that fails is
 * retried with backoff; every step picks up from the move's record, so a
 * retried step, or a new execution started by `cells move` after this one
 * failed, goes on where the move was. Nothing depends on the operator's
 * laptop staying connected.
 */
export class MoveWorkflow extends Construct {
  public readonly stateMachine: StateMachine;
  public readonly mover: ServiceFunction;

  constructor(scope: Construct, id: string, props: MoveWorkflowProps) {
    super(scope, id);
    const stepTimeout = props.stepTimeout ?? Duration.minutes(3);
    this.mover = new ServiceFunction(this, 'Mover', {
      entry: 'functions/mover/index.ts',
      description: 'Takes a move of tenants between cells one step on',
      serviceName: 'mover',
      sharedLayer: props.sharedLayer,
      timeout: stepTimeout,
      memorySize: 1024,
      environment: { MOVE_COPY_SEGMENTS: String(props.copySegments ?? 4) },
    });
    this.mover.bindTable('CONTROL_PLANE_TABLE', props.table.table, (grantee) => props.table.table.grantReadWriteData(grantee));
    this.grantCellTables(props.app);

    const step = new LambdaInvoke(this, 'Step', {
      lambdaFunction: this.mover,
      payload: TaskInput.fromObject({ moveId: JsonPath.stringAt('$.moveId') }),
      resultSelector: { 'next.$': '$.Payload.next', 'seconds.$': '$.Payload.seconds' },
      resultPath: '$.outcome',
      retryOnServiceExceptions: true,
    }).addRetry({
      errors: [Errors.ALL],
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxDelay: Duration.minutes(2),
      maxAttempts: 10,
      jitterStrategy: JitterType.FULL,
    });
    const wait = new Wait(this, 'WaitAsTold', { time: WaitTime.secondsPath('$.outcome.seconds') });
    const definition = step.next(
      new Choice(this, 'Done?')
        .when(Condition.stringEquals('$.outcome.next', 'done'), new Succeed(this, 'MoveEnded'))
        .when(Condition.stringEquals('$.outcome.next', 'wait'), wait.next(step))
        .otherwise(step),
    );

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      logs: {
        destination: new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
        level: LogLevel.ALL,
        includeExecutionData: true,
      },
    });
    const role = Validations.of(this.stateMachine.role);
    role.acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray trace segments and CloudWatch Logs delivery setup support no resource-level permissions',
    });
    role.acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.mover.node.defaultChild as never)}.Arn>:*]`,
      reason: 'Invoking the mover function, qualified by any of its versions or aliases, and nothing else',
    });
  }

  /** The cells' tables: any table of the app and stage (cells register at run time, with generated table names that start with their stack's). */
  private grantCellTables(app: AppIdentity): void {
    const stack = Stack.of(this);
    const tables = Arn.format(
      { service: 'dynamodb', resource: 'table', resourceName: `${stackName(app, '*')}`, arnFormat: ArnFormat.SLASH_RESOURCE_NAME },
      stack,
    );
    Grant.addToPrincipal({
      grantee: this.mover,
      actions: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
      resourceArns: [tables],
    });
    Validations.of(this.mover.role!).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagResourceName(stack, tables)}]`,
      reason: 'Cells are added at run time with generated table names: the mover may use any table of this app and stage, and no other',
    });
  }
}
