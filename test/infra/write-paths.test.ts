import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderWorkflowInput } from '../../functions/cell-api/saga-input.ts';
import { fromRoot } from '../../lib/paths.ts';
import { readAssembly } from '../../local/assembly.ts';
import { resolveValue } from '../../local/template-values.ts';
import { buildTestApp } from '../support/synth.ts';
import { recordWriteFaults, type UpdateRequest } from '../support/write-rules.ts';

/**
 * Every write of a cell-table record keeps the record's invariants
 * (`updatedAt` set, no copy marker left): a marker left equal to `updatedAt`
 * hides the change from live-updates subscribers. This finds the write paths
 * (the state machines' DynamoDB tasks, the functions' write commands) and
 * checks each; a write path it does not know fails it.
 */

interface State {
  readonly Type: string;
  readonly Resource?: string;
  readonly Parameters?: Record<string, unknown>;
  readonly ItemProcessor?: { States: Record<string, State> };
  readonly Iterator?: { States: Record<string, State> };
  readonly Branches?: Array<{ States: Record<string, State> }>;
}

function* statesOf(states: Record<string, State>): Generator<[string, State]> {
  for (const [name, state] of Object.entries(states)) {
    yield [name, state];
    const nested = [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])].filter((graph) => graph !== undefined);
    for (const graph of nested) yield* statesOf(graph.States);
  }
}

/** DynamoDB actions that change a record, as a state's resource names them. */
const WRITE_ACTION = /:dynamodb:(updateItem|putItem|deleteItem|transactWriteItems|batchWriteItem)$/;
/**
 * A transaction's items that the workflow takes from its input, built by
 * orderWorkflowInput and checked below: the reservation, a released line (the
 * release Map's `line`), a line's stock check (the check Map's item itself).
 */
const FROM_SAGA_INPUT = /^\$\.(reservation|line|TransactItems)\b/;

let built: ReturnType<typeof buildTestApp>;
let writeStates: Array<{ machine: string; name: string; action: string; parameters: Record<string, unknown> }>;

beforeAll(() => {
  built = buildTestApp();
  built.app.synth();
  const assembly = readAssembly(built.outdir);
  writeStates = assembly.stateMachines.flatMap((machine) => {
    const definition = JSON.parse(resolveValue(machine.definition, machine.stackName, assembly)) as { States: Record<string, State> };
    return [...statesOf(definition.States)].flatMap(([name, state]) => {
      const action = WRITE_ACTION.exec(state.Resource ?? '')?.[1];
      return action ? [{ machine: machine.name, name, action, parameters: state.Parameters ?? {} }] : [];
    });
  });
});
afterAll(() => built?.cleanup());

describe('every write path of a cell-table record', () => {
  it('finds the saga’s writes in the synthesized state machines', () => {
    const names = new Set(writeStates.map((state) => state.name));
    for (const name of ['Reserve', 'MarkReserved', 'MarkPaid', 'MarkConfirmed', 'ReleaseLine', 'RecordStockNotReturned', 'MarkNotReserved']) {
      expect(names).toContain(name);
    }
  });

  it('sets updatedAt and removes the copy marker in each state machine task', () => {
    const faults = writeStates.flatMap(({ machine, name, action, parameters }) => {
      const where = `${machine} ${name} (${action})`;
      if (action === 'updateItem') return recordWriteFaults(parameters as UpdateRequest).map((fault) => `${where} ${fault}`);
      if (action === 'transactWriteItems') {
        const items = parameters['TransactItems.$'] ?? parameters.TransactItems;
        if (typeof items === 'string')
          return FROM_SAGA_INPUT.test(items) ? [] : [`${where} takes its items from ${items}, which this test does not check`];
        return (items as Array<{ Update?: Record<string, unknown>; ConditionCheck?: unknown }>).flatMap((item) => {
          if (item.ConditionCheck) return [];
          const update = item.Update ?? {};
          const expression = update['UpdateExpression.$'];
          if (typeof expression === 'string') return FROM_SAGA_INPUT.test(expression) ? [] : [`${where} takes its expression from ${expression}`];
          return recordWriteFaults(update as UpdateRequest).map((fault) => `${where} ${fault}`);
        });
      }
      return [`${where}: a write this test does not know how to check`];
    });
    expect(faults).toEqual([]);
  });

  it('sets updatedAt and removes the copy marker in every stock write the saga input carries', () => {
    const input = orderWorkflowInput('cell-table', {
      tenantId: 'acme',
      orderId: 'o-1',
      lines: [
        { itemId: 'a', quantity: 1, from: { incarnation: 'i' } },
        { itemId: 'b', quantity: 2 },
      ],
      paymentToken: 'tok_ok',
      at: '2026-12-07T00:00:00.000Z',
    });
    const updates = [
      ...input.reservation.TransactItems,
      ...input.release.flatMap((line) => line.TransactItems),
      ...input.stockChecks.flatMap((line) => line.TransactItems),
    ]
      .map((item) => item.Update)
      .filter((update) => update !== undefined);
    expect(updates.length).toBe(4);
    expect(updates.flatMap((update) => recordWriteFaults(update))).toEqual([]);
    for (const update of updates) expect(update.ExpressionAttributeValues?.[':updatedAt']).toEqual({ S: '2026-12-07T00:00:00.000Z' });
  });

  it('knows every module of the functions that writes to DynamoDB, and why each keeps the rule', () => {
    // Each is checked by behaviour: the versioned store's writes and the order's creation against DynamoDB Local
    // (test/functions/versioned-store.test.ts, test/functions/order-store.test.ts); the others write no record of a tenant.
    const known: Record<string, string> = {
      'functions/cell-api/versioned-store.ts': 'item and order records: SET updatedAt, REMOVE the marker',
      'functions/cell-api/order-store.ts': 'a new order: created with updatedAt, never over a copy (attribute_not_exists)',
      'functions/cell-api/saga-input.ts': 'the saga’s stock writes, checked above',
      'functions/cell-api/directory.ts': 'the cell’s directory of tenants: no record a subscriber sees',
      'functions/cell-api/change-journal.ts': 'a move’s journal entries (entity journal): no record a subscriber sees',
      'functions/cell-api/write-deadline.ts': 'names the write commands, writes nothing',
      'functions/live-socket/connection-store.ts': 'the connections table, not a cell table',
    };
    const writers = readdirSync(fromRoot('functions'), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => path.join('functions', file))
      .filter((file) => /\b(Put|Update|Delete|TransactWrite|BatchWrite)(Item)?Command\b|UpdateExpression/.test(readFileSync(fromRoot(file), 'utf8')));
    expect(writers.sort()).toEqual(Object.keys(known).sort());
  });
});
