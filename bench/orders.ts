/**
 * Orders: the saga's cost read from its synthesized definition (state
 * transitions on the success path) and how many complete per second through
 * the local runtime.
 */
import { randomUUID } from 'node:crypto';
import pMap from 'p-map';
import type { LocalStepFunctions } from '../local/step-functions.ts';
import { benchItemId, frontDoorHeaders, type ThroughputTarget } from './throughput.ts';

/** Standard workflows, US East (N. Virginia) and most regions: USD per state transition. */
export const USD_PER_TRANSITION = 0.025 / 1000;
/** The default state-transition quota of a large region (DESIGN.md's limits). */
export const TRANSITIONS_PER_SECOND = 1_500;
export const TRANSITION_BURST = 5_000;

interface StateDefinition {
  readonly Type: string;
  readonly Next?: string;
  readonly End?: boolean;
  readonly Branches?: readonly Definition[];
}
export interface Definition {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, StateDefinition>>;
}

/**
 * The states an execution enters when every step succeeds the first time:
 * `Next` from `StartAt` to the end, a Parallel state and then every state
 * of each of its branches. Step Functions bills one transition per state
 * entered (retries add more). A Choice on that path cannot be walked without
 * data, so it is refused rather than guessed.
 */
export function successPath(definition: Definition): string[] {
  const entered: string[] = [];
  const walk = ({ StartAt, States }: Definition) => {
    let name: string | undefined = StartAt;
    while (name !== undefined) {
      const state: StateDefinition | undefined = States[name];
      if (!state) throw new Error(`the definition names a state ${name} it does not define`);
      entered.push(name);
      if (state.Type === 'Choice') throw new Error(`the success path goes through the Choice state ${name}`);
      if (state.Type === 'Fail') throw new Error(`the success path ends in the Fail state ${name}`);
      for (const branch of state.Branches ?? []) walk(branch);
      if (state.Type === 'Succeed' || state.End) return;
      name = state.Next;
      if (name === undefined) throw new Error(`the state ${entered.at(-1)} has neither Next nor End`);
    }
  };
  walk(definition);
  return entered;
}

export interface OrderFigures {
  readonly successPath: string[];
  readonly transitionsPerOrder: number;
  readonly usdPerMillionOrders: number;
  /** Orders per second the default transition quota sustains, and the burst it allows. */
  readonly quotaOrdersPerSecond: number;
  readonly quotaBurstOrders: number;
  readonly orders: number;
  readonly concurrency: number;
  /** Orders placed and their executions completed, per second, locally. */
  readonly completedPerSecond: number;
}

export function orderCosts(definition: Definition) {
  const path = successPath(definition);
  return {
    successPath: path,
    transitionsPerOrder: path.length,
    usdPerMillionOrders: path.length * USD_PER_TRANSITION * 1_000_000,
    quotaOrdersPerSecond: TRANSITIONS_PER_SECOND / path.length,
    quotaBurstOrders: Math.floor(TRANSITION_BURST / path.length),
  };
}

export async function benchOrders(
  target: ThroughputTarget,
  stepFunctions: LocalStepFunctions,
  definition: Definition,
  orders: number,
  concurrency: number,
  /** How many bench items exist to order from (one line each, spread over them). */
  items: number,
): Promise<OrderFigures> {
  const succeeded = () => stepFunctions.stateMachineArns().reduce((sum, arn) => sum + stepFunctions.list(arn, 'SUCCEEDED').length, 0);
  await stepFunctions.settled();
  const before = succeeded();
  const headers = frontDoorHeaders(target);
  const started = performance.now();
  await pMap(
    Array.from({ length: orders }, (_, i) => i),
    async (i) => {
      const response = await fetch(`${target.url}/tenants/${target.tenantId}/orders`, {
        method: 'POST',
        headers: { ...headers, 'idempotency-key': randomUUID() },
        body: JSON.stringify({ lines: [{ itemId: benchItemId(i % items), quantity: 1 }], customerId: 'bench', payment: { token: 'tok_ok' } }),
      });
      const answer = await response.text();
      if (response.status !== 202) throw new Error(`POST orders: ${response.status} ${answer}`);
    },
    { concurrency },
  );
  await stepFunctions.settled();
  const seconds = (performance.now() - started) / 1000;
  const completed = succeeded() - before;
  if (completed !== orders) throw new Error(`${orders} orders placed but ${completed} executions succeeded`);
  return { ...orderCosts(definition), orders, concurrency, completedPerSecond: orders / seconds };
}
