import { Duration, RemovalPolicy, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import {
  Chain,
  Choice,
  Condition,
  DefinitionBody,
  Errors,
  Fail,
  JitterType,
  JsonPath,
  LogLevel,
  Map as MapState,
  Parallel,
  Pass,
  Result,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Timeout,
} from 'aws-cdk-lib/aws-stepfunctions';
import { CallAwsService, DynamoAttributeValue, DynamoUpdateItem, LambdaInvoke, SqsSendMessage } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ORDER_SK_PREFIX, RECORD_WRITE_NAMES, TENANT_PREFIX } from '../layers/shared/src/contracts/cell-table.ts';
import {
  FAILURE_ATTRIBUTES,
  FAILURE_REASONS,
  PAYMENT_ERRORS,
  SAGA_INPUT,
  type FailureReason,
  type OrderStatus,
} from '../layers/shared/src/contracts/order-saga.ts';

export interface OrderWorkflowProps {
  /** The cell's table: stock lives on its items, orders beside them. */
  readonly table: TableV2;
  /** Charges the order (the simulated payment provider). */
  readonly paymentFunction: IFunction;
  /** Where `order.confirmed` messages go. */
  readonly eventsQueue: IQueue;
  /**
   * How long the Pay step may take before it counts as `payment_timeout`.
   * @default Duration.seconds(5)
   */
  readonly paymentTimeout?: Duration;
}

/**
 * One cell's order saga, a Standard state machine in JSONPath:
 *
 * Reserve (one TransactWriteItems: every line's stock, conditional) →
 * MarkReserved → Pay (Lambda; transient errors retried with backoff and
 * jitter) → MarkPaid → Confirm (in parallel: mark CONFIRMED, send
 * `order.confirmed` to the cell's queue) → Succeed.
 *
 * A cancelled reservation changed no stock and marks the order FAILED
 * (`out_of_stock`, with the short items: each line's reservation condition
 * checked on its own, so the order holds them as data). A declined, timed-out or failed payment, or one that cannot be
 * recorded, releases the stock and marks the order FAILED. The release is
 * the reservation's inverse line by line (a Map of one-item transactions),
 * each conditional on the same creation of the item: a line whose item was
 * deleted, or deleted and created again, since the reservation is recorded
 * in the order's `stockNotReturned` and the others are still given back, so
 * every path ends in a recorded CONFIRMED or FAILED. Every step but Pay is a
 * direct service integration, and every status change is written to the
 * order, so reading it shows where the order is.
 */
export class OrderWorkflow extends Construct {
  public readonly stateMachine: StateMachine;

  constructor(scope: Construct, id: string, props: OrderWorkflowProps) {
    super(scope, id);
    const { table } = props;
    const orderKey = {
      pk: DynamoAttributeValue.fromString(JsonPath.format(`${TENANT_PREFIX}{}`, JsonPath.stringAt(SAGA_INPUT.tenantId))),
      sk: DynamoAttributeValue.fromString(JsonPath.format(`${ORDER_SK_PREFIX}{}`, JsonPath.stringAt(SAGA_INPUT.orderId))),
    };
    const now = DynamoAttributeValue.fromString(JsonPath.stringAt('$$.State.EnteredTime'));

    /** A status change, allowed only from the status(es) the saga can have left the order in; `extra` sets more attributes by name. */
    const setStatus = (
      stateId: string,
      from: OrderStatus | OrderStatus[],
      to: OrderStatus,
      at: string,
      extra: Record<string, DynamoAttributeValue> = {},
    ) =>
      new DynamoUpdateItem(this, stateId, {
        table,
        key: orderKey,
        updateExpression: `SET #status = :to, #at = :now, #updatedAt = :now${Object.keys(extra)
          .map((name) => `, ${name} = :${name}`)
          .join('')} REMOVE #copy`,
        conditionExpression: `#status IN (${[from]
          .flat()
          .map((_, i) => `:from${i}`)
          .join(', ')})`,
        expressionAttributeNames: { '#status': 'status', '#at': at, ...RECORD_WRITE_NAMES },
        expressionAttributeValues: {
          ...Object.fromEntries([from].flat().map((status, i) => [`:from${i}`, DynamoAttributeValue.fromString(status)])),
          ':to': DynamoAttributeValue.fromString(to),
          ':now': now,
          ...Object.fromEntries(Object.entries(extra).map(([name, value]) => [`:${name}`, value])),
        },
        resultPath: JsonPath.DISCARD,
      }).addRetry({
        errors: ['DynamoDB.InternalServerErrorException', 'DynamoDB.ThrottlingException'],
        maxAttempts: 4,
        jitterStrategy: JitterType.FULL,
      });

    const stockTransaction = (stateId: string, itemsPath: string, tokenSuffix: string) =>
      new CallAwsService(this, stateId, {
        service: 'dynamodb',
        action: 'transactWriteItems',
        parameters: {
          TransactItems: JsonPath.listAt(itemsPath),
          // Idempotent for 10 minutes: a retried step never reserves or releases twice.
          ClientRequestToken: JsonPath.hash(JsonPath.format(`{}${tokenSuffix}`, JsonPath.executionName), 'MD5'),
        },
        // Transactions are authorized per item operation: UpdateItem on this table, nothing else.
        iamAction: 'dynamodb:UpdateItem',
        iamResources: [table.tableArn],
        resultPath: JsonPath.DISCARD,
      });

    const orderFailed = new Fail(this, 'OrderFailed', { error: 'OrderFailed', causePath: '$.failure.reason' });
    // `$.failure`: reason, cause (DynamoDB's or the payment's message, kept for operators) and lines (each line's stock check, or none).
    const markFailed = (stateId: string, from: OrderStatus | OrderStatus[]) =>
      setStatus(stateId, from, 'FAILED', 'failedAt', {
        [FAILURE_ATTRIBUTES.reason]: DynamoAttributeValue.fromString(JsonPath.stringAt('$.failure.reason')),
        [FAILURE_ATTRIBUTES.lines]: DynamoAttributeValue.listFromJsonPath(JsonPath.stringAt('$.failure.lines')),
        failureCause: DynamoAttributeValue.fromString(JsonPath.stringAt('$.failure.cause')),
      });

    // Reserve. Concurrent orders of one item can cancel each other's transaction
    // (TransactionConflict): retried with jitter; a failed stock condition stays failed.
    const reserve = stockTransaction('Reserve', SAGA_INPUT.reservation, '');
    reserve.addRetry({
      errors: ['DynamoDb.TransactionCanceledException', 'DynamoDb.InternalServerErrorException', 'DynamoDb.ThrottlingException'],
      interval: Duration.seconds(1),
      backoffRate: 2,
      maxAttempts: 3,
      jitterStrategy: JitterType.FULL,
    });
    // Which lines were short: each line's condition alone (a ConditionCheck, which writes nothing), each
    // result a DynamoDB map { itemId, short }. A check that cannot be made counts as not short rather than guess.
    const checkLine = new CallAwsService(this, 'CheckLine', {
      service: 'dynamodb',
      action: 'transactWriteItems',
      parameters: { TransactItems: JsonPath.listAt('$.TransactItems') },
      iamAction: 'dynamodb:ConditionCheckItem',
      iamResources: [table.tableArn],
      resultPath: JsonPath.DISCARD,
    });
    checkLine.addRetry({
      errors: ['DynamoDb.InternalServerErrorException', 'DynamoDb.ThrottlingException'],
      maxAttempts: 4,
      jitterStrategy: JitterType.FULL,
    });
    const checked = (stateId: string, short: boolean) =>
      new Pass(this, stateId, { parameters: { M: { itemId: { 'S.$': '$.itemId' }, short: { BOOL: short } } } });
    const inStock = checked('LineInStock', false);
    checkLine.addCatch(checked('LineShort', true), { errors: ['DynamoDb.TransactionCanceledException'], resultPath: '$.error' });
    checkLine.addCatch(inStock, { errors: [Errors.ALL], resultPath: '$.error' });
    const findShort = new MapState(this, 'FindShortItems', { itemsPath: SAGA_INPUT.stockChecks, resultPath: '$.failure.lines' }).itemProcessor(
      checkLine.next(inStock),
    );
    const markNotReserved = markFailed('MarkNotReserved', 'PENDING');
    markNotReserved.next(orderFailed);
    findShort.addCatch(new Pass(this, 'ShortItemsUnknown', { result: Result.fromArray([]), resultPath: '$.failure.lines' }).next(markNotReserved), {
      errors: [Errors.ALL],
      resultPath: JsonPath.DISCARD,
    });
    const failedBecause = (stateId: string, reason: FailureReason) =>
      new Pass(this, stateId, { parameters: { reason, 'cause.$': '$.error.Cause', lines: [] }, resultPath: '$.failure' });
    const unreserved = new Choice(this, 'WhyNotReserved')
      .when(
        Condition.stringMatches('$.error.Cause', '*ConditionalCheckFailed*'),
        failedBecause('OutOfStock', FAILURE_REASONS.outOfStock).next(findShort).next(markNotReserved),
      )
      .otherwise(failedBecause('ReservationConflict', FAILURE_REASONS.reservationConflict).next(markNotReserved));
    reserve.addCatch(unreserved, { errors: [Errors.ALL], resultPath: '$.error' });

    // Pay, and compensate when it does not go through.
    const pay = new LambdaInvoke(this, 'Pay', {
      lambdaFunction: props.paymentFunction,
      payload: TaskInput.fromObject({
        tenantId: JsonPath.stringAt(SAGA_INPUT.tenantId),
        orderId: JsonPath.stringAt(SAGA_INPUT.orderId),
        token: JsonPath.stringAt(SAGA_INPUT.paymentToken),
        attempt: JsonPath.numberAt('$$.State.RetryCount'),
      }),
      taskTimeout: Timeout.duration(props.paymentTimeout ?? Duration.seconds(5)),
      retryOnServiceExceptions: false,
      resultSelector: { 'paymentId.$': '$.Payload.paymentId' },
      resultPath: '$.paid',
    });
    pay.addRetry({
      errors: [
        PAYMENT_ERRORS.unavailable,
        'Lambda.ServiceException',
        'Lambda.AWSLambdaException',
        'Lambda.SdkClientException',
        'Lambda.TooManyRequestsException',
      ],
      interval: Duration.seconds(1),
      backoffRate: 2,
      maxAttempts: 3,
      jitterStrategy: JitterType.FULL,
    });
    // Compensate line by line: one item deleted (or created anew) since the reservation
    // keeps its stock out of reach, and must not keep the other lines' stock too.
    const releaseLine = new CallAwsService(this, 'ReleaseLine', {
      service: 'dynamodb',
      action: 'transactWriteItems',
      parameters: {
        // The line's update as the cell API built it, stamped with the time the stock goes back (`:updatedAt`).
        TransactItems: [
          {
            Update: {
              ...Object.fromEntries(
                ['TableName', 'Key', 'UpdateExpression', 'ConditionExpression', 'ExpressionAttributeNames'].map((field) => [
                  field,
                  JsonPath.objectAt(`$.line.TransactItems[0].Update.${field}`),
                ]),
              ),
              ExpressionAttributeValues: JsonPath.jsonMerge(
                JsonPath.objectAt('$.line.TransactItems[0].Update.ExpressionAttributeValues'),
                JsonPath.objectAt('$.stamp'),
              ),
            },
          },
        ],
        // A one-item transaction for its idempotency: a retried release never gives back twice.
        ClientRequestToken: JsonPath.hash(
          JsonPath.format('{}/release/{}', JsonPath.stringAt('$.executionName'), JsonPath.stringAt('$.line.itemId')),
          'MD5',
        ),
      },
      iamAction: 'dynamodb:UpdateItem',
      iamResources: [table.tableArn],
      resultPath: JsonPath.DISCARD,
    });
    // Retried hard, as stock must not be lost to a conflict with concurrent orders of the item (also a
    // TransactionCanceledException). A failed condition (the item is gone) fails every attempt, and is then recorded.
    releaseLine.addRetry({ errors: [Errors.ALL], interval: Duration.seconds(1), backoffRate: 2, maxAttempts: 6, jitterStrategy: JitterType.FULL });
    const recordNotReturned = new DynamoUpdateItem(this, 'RecordStockNotReturned', {
      table,
      // The item selector hands each line the order's tenantId and orderId.
      key: orderKey,
      // A string set: recording the same line twice is recording it once.
      updateExpression: 'ADD stockNotReturned :line SET #updatedAt = :now REMOVE #copy',
      conditionExpression: 'attribute_exists(pk)',
      expressionAttributeNames: RECORD_WRITE_NAMES,
      expressionAttributeValues: { ':line': DynamoAttributeValue.fromStringSet(JsonPath.listAt('$.itemIdSet')), ':now': now },
      resultPath: JsonPath.DISCARD,
    }).addRetry({
      errors: ['DynamoDB.InternalServerErrorException', 'DynamoDB.ThrottlingException'],
      maxAttempts: 6,
      jitterStrategy: JitterType.FULL,
    });
    // No order record to note it on (see MarkReserved): the execution's history keeps it.
    recordNotReturned.addCatch(new Pass(this, 'NotReturnedUnrecorded'), { errors: [Errors.ALL], resultPath: JsonPath.DISCARD });
    releaseLine.addCatch(recordNotReturned, { errors: [Errors.ALL], resultPath: '$.error' });
    const compensate = new MapState(this, 'ReleaseStock', {
      itemsPath: SAGA_INPUT.release,
      itemSelector: {
        line: JsonPath.stringAt('$$.Map.Item.Value'),
        stamp: { ':updatedAt': { S: JsonPath.stringAt('$$.State.EnteredTime') } },
        itemIdSet: JsonPath.array(JsonPath.stringAt('$$.Map.Item.Value.itemId')),
        executionName: JsonPath.executionName,
        tenantId: JsonPath.stringAt(SAGA_INPUT.tenantId),
        orderId: JsonPath.stringAt(SAGA_INPUT.orderId),
      },
      resultPath: JsonPath.DISCARD,
    }).itemProcessor(releaseLine);
    // PENDING too: MarkReserved itself may be what failed.
    const released = compensate.next(markFailed('MarkReleasedFailed', ['PENDING', 'RESERVED'])).next(orderFailed);
    const because = (stateId: string, reason: FailureReason) => failedBecause(stateId, reason).next(released);
    pay.addCatch(because('PaymentDeclined', FAILURE_REASONS.paymentDeclined), { errors: [PAYMENT_ERRORS.declined], resultPath: '$.error' });
    pay.addCatch(because('PaymentTimedOut', FAILURE_REASONS.paymentTimeout), { errors: [Errors.TIMEOUT], resultPath: '$.error' });
    pay.addCatch(because('PaymentFailed', FAILURE_REASONS.paymentFailed), { errors: [Errors.ALL], resultPath: '$.error' });

    // Confirm: the order's status and the message to the cell's queue, together.
    const confirm = new Parallel(this, 'Confirm', { resultPath: JsonPath.DISCARD })
      .branch(setStatus('MarkConfirmed', 'PAID', 'CONFIRMED', 'confirmedAt'))
      .branch(
        new SqsSendMessage(this, 'NotifyConfirmed', {
          queue: props.eventsQueue,
          messageBody: TaskInput.fromObject({
            type: 'order.confirmed',
            tenantId: JsonPath.stringAt(SAGA_INPUT.tenantId),
            orderId: JsonPath.stringAt(SAGA_INPUT.orderId),
            paymentId: JsonPath.stringAt('$.paid.paymentId'),
            at: JsonPath.stringAt('$$.State.EnteredTime'),
          }),
          resultPath: JsonPath.DISCARD,
        }).addRetry({ errors: [Errors.ALL], maxAttempts: 4, jitterStrategy: JitterType.FULL }),
      );

    // Stock reserved but the order not marked (retries exhausted): give the stock back.
    const markReserved = setStatus('MarkReserved', 'PENDING', 'RESERVED', 'reservedAt');
    markReserved.addCatch(because('ReservationUnrecorded', FAILURE_REASONS.reservationUnrecorded), { errors: [Errors.ALL], resultPath: '$.error' });

    // Paid but not recorded (retries exhausted): the stock goes back and the reason names it, for a refund.
    const markPaid = setStatus('MarkPaid', 'RESERVED', 'PAID', 'paidAt');
    markPaid.addCatch(because('PaymentUnrecorded', FAILURE_REASONS.paymentUnrecorded), { errors: [Errors.ALL], resultPath: '$.error' });

    const definition = Chain.start(reserve).next(markReserved).next(pay).next(markPaid).next(confirm).next(new Succeed(this, 'OrderConfirmed'));

    const logGroup = new LogGroup(this, 'Logs', {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      // Execution data holds the payment token: logged states, never their data.
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
      timeout: Duration.minutes(15),
    });

    const role = Validations.of(this.stateMachine.role);
    role.acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray trace segments and CloudWatch Logs delivery setup support no resource-level permissions',
    });
    role.acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(props.paymentFunction.node.defaultChild as CfnElement)}.Arn>:*]`,
      reason: 'Invoking the payment function, qualified by any of its versions or aliases, and nothing else',
    });
  }
}
