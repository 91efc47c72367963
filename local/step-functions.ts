import * as dynamodb from '@aws-sdk/client-dynamodb';
import { ExecutionError, ExecutionTimeoutError, StateMachine } from 'aws-local-stepfunctions';
import type { LocalAssembly } from './assembly.ts';
import { FunctionThrottledError } from './function-host.ts';
import { lambdaErrorPayload, functionNameOf } from './lambda-api.ts';
import type { LocalQueues } from './queues.ts';
import { resolveValue, stateMachineArn } from './template-values.ts';

/** A Step Functions API error, named as the service names it (`ExecutionAlreadyExists`, …). */
export class StepFunctionsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

/** A task's failure, named as Step Functions names it, so that Retry and Catch match as on AWS. */
class TaskFailure extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface Execution {
  readonly executionArn: string;
  readonly stateMachineArn: string;
  readonly name: string;
  status: ExecutionStatus;
  readonly startDate: Date;
  stopDate?: Date;
  readonly input: string;
  output?: string;
  error?: string;
  cause?: string;
}

export interface LocalStepFunctionsOptions {
  readonly dynamodb: dynamodb.DynamoDBClient;
  /** Runs a local function, as Lambda's Invoke would; throws as `FunctionHost.invoke` does. */
  readonly invoke: (functionName: string, payload: unknown) => Promise<unknown>;
  readonly queues: LocalQueues;
  /**
   * Every retrier waits this many milliseconds instead of its interval,
   * backoff and jitter (tests that retry a lot).
   * @default the definition's own intervals
   */
  readonly retryIntervalMs?: number;
  /** One line per finished execution. @default silent */
  readonly log?: (message: string) => void;
}

type States = Record<string, StateDefinition>;
interface StateDefinition {
  Type: string;
  Resource?: string;
  Retry?: unknown[];
  Branches?: Array<{ States: States }>;
  ItemProcessor?: { States: States };
  Iterator?: { States: States };
  [field: string]: unknown;
}
interface Definition {
  StartAt: string;
  States: States;
  [field: string]: unknown;
}

interface LoadedMachine {
  readonly arn: string;
  readonly name: string;
  readonly machine: StateMachine;
  /** Task state name → its resource. */
  readonly tasks: Map<string, string>;
  /** Context key → state name, for the `$$.State` fields (see `prepare`). */
  readonly stateKeys: Array<[string, string]>;
  readonly retryingStates: string[];
}

/** The integrations the local runtime performs, by `Resource`. */
const SDK_DYNAMODB = /^arn:aws:states:::aws-sdk:dynamodb:([a-zA-Z]+)$/;
const OPTIMIZED_DYNAMODB = /^arn:aws:states:::dynamodb:(getItem|putItem|updateItem|deleteItem)$/;
const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';
const SQS_SEND = 'arn:aws:states:::sqs:sendMessage';

/** Execution names as Step Functions accepts them. */
const EXECUTION_NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/]{1,80}$/;
const MAX_INPUT_BYTES = 256 * 1024;

/**
 * Step Functions, locally: the app's state machines, with the definitions
 * taken from the synthesized templates, run by `aws-local-stepfunctions`.
 * Their tasks act on DynamoDB Local, the local functions and the local
 * queues; StartExecution keeps Standard workflows' idempotency by name.
 */
export class LocalStepFunctions {
  private machines = new Map<string, LoadedMachine>();
  private readonly executions = new Map<string, Execution & { done: Promise<void>; abort: () => void }>();

  constructor(private readonly options: LocalStepFunctionsOptions) {}

  /** (Re)loads the app's state machines; running executions finish on the definition they started with. */
  load(assembly: LocalAssembly): void {
    const machines = new Map<string, LoadedMachine>();
    for (const sm of assembly.stateMachines) {
      const arn = stateMachineArn(assembly.region, sm.name);
      const definition = JSON.parse(resolveValue(sm.definition, sm.stackName, assembly)) as Definition;
      machines.set(arn, prepare(arn, sm.name, definition));
    }
    this.machines = machines;
  }

  stateMachineArns(): string[] {
    return [...this.machines.keys()];
  }

  start(request: { stateMachineArn?: string; name?: string; input?: string }): { executionArn: string; startDate: Date } {
    const loaded = this.machines.get(request.stateMachineArn ?? '');
    if (!loaded) throw new StepFunctionsError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${request.stateMachineArn}'`);
    const name = request.name ?? crypto.randomUUID();
    if (!EXECUTION_NAME.test(name)) throw new StepFunctionsError('InvalidName', `Invalid Name: '${name}'`);
    const input = request.input ?? '{}';
    if (Buffer.byteLength(input) > MAX_INPUT_BYTES) throw new StepFunctionsError('InvalidExecutionInput', 'the input is larger than 256 KB');
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch {
      throw new StepFunctionsError('InvalidExecutionInput', 'Invalid State Machine Execution Input: the input is not JSON');
    }
    const executionArn = `${loaded.arn.replace(':stateMachine:', ':execution:')}:${name}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      // Standard workflows: the same name and input while running is the same start; anything else is refused.
      if (existing.status === 'RUNNING' && existing.input === input) return { executionArn, startDate: existing.startDate };
      throw new StepFunctionsError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }

    const { handlers, context } = this.executionScope(loaded, executionArn, name);
    const retryIntervalMs = this.options.retryIntervalMs;
    const run = loaded.machine.run(parsed as never, {
      overrides: {
        taskResourceLocalHandlers: handlers,
        ...(retryIntervalMs !== undefined && {
          retryIntervalOverrides: Object.fromEntries(loaded.retryingStates.map((state) => [state, retryIntervalMs])),
        }),
      },
      context,
      noThrowOnAbort: true,
    });
    const execution: Execution = { executionArn, stateMachineArn: loaded.arn, name, status: 'RUNNING', startDate: new Date(), input };
    const done = run.result
      .then(
        (output) => {
          Object.assign(execution, output === null ? { status: 'ABORTED' } : { status: 'SUCCEEDED', output: JSON.stringify(output) });
        },
        (error: unknown) => {
          Object.assign(execution, failureOf(error));
        },
      )
      .finally(() => {
        execution.stopDate = new Date();
        this.options.log?.(`${loaded.name} ${name} ${execution.status}${execution.error ? ` ${execution.error}: ${execution.cause}` : ''}`);
      });
    this.executions.set(executionArn, Object.assign(execution, { done, abort: run.abort }));
    return { executionArn, startDate: execution.startDate };
  }

  describe(executionArn: string | undefined): Execution {
    const execution = this.executions.get(executionArn ?? '');
    if (!execution) throw new StepFunctionsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return described(execution);
  }

  list(stateMachineArn: string | undefined, statusFilter?: ExecutionStatus): Execution[] {
    if (!this.machines.has(stateMachineArn ?? '')) {
      throw new StepFunctionsError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
    }
    return [...this.executions.values()]
      .filter((e) => e.stateMachineArn === stateMachineArn && (!statusFilter || e.status === statusFilter))
      .map(described);
  }

  /** Resolves when no execution is running. */
  async settled(): Promise<void> {
    await Promise.all([...this.executions.values()].map((e) => e.done));
  }

  /** Stops every running execution (ABORTED). */
  async stop(): Promise<void> {
    for (const execution of this.executions.values()) if (execution.status === 'RUNNING') execution.abort();
    await this.settled();
  }

  /**
   * One execution's task handlers and context object. `aws-local-stepfunctions`
   * has no `$$.State`: each state's fields are served from `$$.States.<key>`
   * (see `prepare`), with `RetryCount` counted here, from the task's own
   * failures since its last success.
   */
  private executionScope(loaded: LoadedMachine, executionArn: string, name: string) {
    const failures = new Map<string, number>();
    const handlers: Record<string, (input: unknown) => Promise<never>> = {};
    for (const [stateName, resource] of loaded.tasks) {
      handlers[stateName] = async (parameters) => {
        try {
          const result = await this.perform(resource, parameters as Record<string, unknown>);
          failures.delete(stateName);
          return result as never;
        } catch (error) {
          failures.set(stateName, (failures.get(stateName) ?? 0) + 1);
          throw error;
        }
      };
    }
    const stateFields = (stateName: string) => ({
      Name: stateName,
      get EnteredTime() {
        return new Date().toISOString();
      },
      get RetryCount() {
        return failures.get(stateName) ?? 0;
      },
    });
    const context = {
      Execution: { Id: executionArn, Name: name, RoleArn: `${loaded.arn.split(':stateMachine:')[0]}:role/local` },
      StateMachine: { Id: loaded.arn, Name: loaded.name },
      States: Object.fromEntries(loaded.stateKeys.map(([key, stateName]) => [key, stateFields(stateName)])),
    };
    return { handlers, context };
  }

  private async perform(resource: string, parameters: Record<string, unknown>): Promise<unknown> {
    const sdk = SDK_DYNAMODB.exec(resource) ?? OPTIMIZED_DYNAMODB.exec(resource);
    if (sdk) {
      // The SDK integrations name errors `DynamoDb.<Exception>`, the optimized one `DynamoDB.<Exception>`.
      const prefix = resource.includes(':aws-sdk:') ? 'DynamoDb' : 'DynamoDB';
      return this.dynamo(sdk[1] as string, parameters, prefix);
    }
    if (resource === LAMBDA_INVOKE) {
      try {
        const payload = await this.options.invoke(functionNameOf(String(parameters.FunctionName)), parameters.Payload ?? {});
        return { ExecutedVersion: '$LATEST', Payload: payload, StatusCode: 200 };
      } catch (error) {
        // A throttle is Lambda's error, not the function's: the name Step Functions gives it.
        if (error instanceof FunctionThrottledError) throw new TaskFailure('Lambda.TooManyRequestsException', error.message);
        const failure = lambdaErrorPayload(error);
        throw new TaskFailure(failure.errorType, JSON.stringify(failure));
      }
    }
    if (resource === SQS_SEND) {
      const body = parameters.MessageBody;
      try {
        return this.options.queues.send(String(parameters.QueueUrl), typeof body === 'string' ? body : JSON.stringify(body));
      } catch (error) {
        throw new TaskFailure(`SQS.${(error as Error).name}`, (error as Error).message);
      }
    }
    throw new TaskFailure('States.Runtime', `${resource} is not supported locally`);
  }

  private async dynamo(action: string, parameters: Record<string, unknown>, prefix: string): Promise<unknown> {
    const commandName = `${action[0]!.toUpperCase()}${action.slice(1)}Command`;
    const Command = (dynamodb as unknown as Record<string, new (input: unknown) => dynamodb.TransactWriteItemsCommand>)[commandName];
    if (!Command) throw new TaskFailure('States.Runtime', `DynamoDB has no action ${action}`);
    try {
      const { $metadata: _metadata, ...output } = await this.options.dynamodb.send(new Command(parameters));
      return output;
    } catch (error) {
      throw new TaskFailure(`${prefix}.${(error as Error).name}`, (error as Error).message);
    }
  }
}

/**
 * Indexes a definition's states and rewrites every `$$.State.` to
 * `$$.States.<key>.` (see `executionScope`), checking that each task's
 * resource is one the local runtime performs.
 */
function prepare(arn: string, name: string, definition: Definition): LoadedMachine {
  const tasks = new Map<string, string>();
  const stateKeys: Array<[string, string]> = [];
  const retryingStates: string[] = [];
  const visit = (states: States) => {
    for (const [stateName, state] of Object.entries(states)) {
      const key = `s${stateKeys.length}`;
      stateKeys.push([key, stateName]);
      const { Branches, ItemProcessor, Iterator, ...fields } = state;
      const rewritten = JSON.parse(JSON.stringify(fields).replaceAll('$$.State.', () => `$$.States.${key}.`)) as StateDefinition;
      Object.assign(state, rewritten);
      for (const branch of Branches ?? []) visit(branch.States);
      for (const processor of [ItemProcessor, Iterator]) if (processor) visit(processor.States);
      if (state.Retry) retryingStates.push(stateName);
      if (state.Type !== 'Task') continue;
      const resource = String(state.Resource);
      const supported = SDK_DYNAMODB.test(resource) || OPTIMIZED_DYNAMODB.test(resource) || resource === LAMBDA_INVOKE || resource === SQS_SEND;
      if (!supported) throw new Error(`${name}: the task ${stateName} calls ${resource}, which the local runtime does not perform`);
      tasks.set(stateName, resource);
    }
  };
  visit(definition.States);
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  return { arn, name, machine, tasks, stateKeys, retryingStates };
}

/** An execution as the API describes it, without the runner's handles. */
function described({ done: _done, abort: _abort, ...execution }: Execution & { done: unknown; abort: unknown }): Execution {
  return execution;
}

function failureOf(error: unknown): Partial<Execution> {
  if (error instanceof ExecutionTimeoutError) return { status: 'TIMED_OUT', error: 'States.Timeout', cause: 'the execution timed out' };
  const caught = error instanceof ExecutionError && error.cause instanceof Error ? error.cause : (error as Error);
  return { status: 'FAILED', error: caught.name, cause: caught.message };
}
