import { afterAll, beforeAll } from 'vitest';
import { ConnectionStore } from '../../functions/live-socket/connection-store.ts';
import { TENANT_INDEX } from '../../layers/shared/src/contracts/connections.ts';
import { createCellTable } from './tables.ts';

/**
 * A live-updates connections table in DynamoDB Local (the suite's: pass
 * `inject('dynamoEndpoint')`), and the
 * store over it, for one test file: made in its `beforeAll`, dropped in its
 * `afterAll`. Call it at the top of the file.
 */
export function connectionsTable(endpoint: string): { readonly table: Awaited<ReturnType<typeof createCellTable>>; readonly store: ConnectionStore } {
  let made: { table: Awaited<ReturnType<typeof createCellTable>>; store: ConnectionStore } | undefined;
  const current = () => {
    if (!made) throw new Error('the connections table is made in beforeAll: use it inside a test');
    return made;
  };
  beforeAll(async () => {
    const table = await createCellTable(endpoint, 'connections', TENANT_INDEX);
    made = { table, store: new ConnectionStore(table.doc, table.tableName) };
  });
  afterAll(async () => {
    await made?.table.drop();
  });
  return {
    get table() {
      return current().table;
    },
    get store() {
      return current().store;
    },
  };
}
