import {
  DynamoDBDocumentClient,
  BatchWriteCommand,
  DeleteCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ChangeJournal } from '../../../functions/cell-api/change-journal.ts';
import { JOURNAL_SHARDS, journalPartition } from '../../../layers/shared/src/contracts/cell-table.ts';
import { createCellTable } from '../../support/tables.ts';
import { recordCommands } from '../../support/commands.ts';

let table: Awaited<ReturnType<typeof createCellTable>>;
let doc: DynamoDBDocumentClient;
let journal: ChangeJournal;
let clock = 1_000;

beforeAll(async () => {
  table = await createCellTable(inject('dynamoEndpoint'));
  journal = new ChangeJournal(table.tableName, () => clock);
  journal.guard(table.client);
  doc = DynamoDBDocumentClient.from(table.client);
});
afterAll(async () => {
  await table?.drop();
});

async function entries(moveId: string) {
  const found: Array<Record<string, unknown>> = [];
  for (let shard = 0; shard < JOURNAL_SHARDS; shard += 1) {
    const { Items = [] } = await doc.send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': journalPartition(moveId, shard) },
        ConsistentRead: true,
      }),
    );
    found.push(...Items);
  }
  return found.map(({ tenantId, recordSk, at }) => ({ tenantId, recordSk, at })).sort((a, b) => String(a.recordSk).localeCompare(String(b.recordSk)));
}

const key = (tenantId: string, sk: string) => ({ pk: `TENANT#${tenantId}`, sk });

describe('ChangeJournal', () => {
  it('journals every record a moving tenant’s request writes, whatever the command, before it is written', async () => {
    const moving = { moveId: 'm-all', tenantId: 'acme' };
    clock = 5_000;
    await journal.run(moving, async () => {
      await doc.send(new PutCommand({ TableName: table.tableName, Item: { ...key('acme', 'ITEM#put'), n: 1 } }));
      await doc.send(
        new UpdateCommand({
          TableName: table.tableName,
          Key: key('acme', 'ITEM#update'),
          UpdateExpression: 'SET n = :n',
          ExpressionAttributeValues: { ':n': 1 },
        }),
      );
      await doc.send(new DeleteCommand({ TableName: table.tableName, Key: key('acme', 'ITEM#delete') }));
      await doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: table.tableName, Item: { ...key('acme', 'ORDER#t1'), n: 1 } } },
            {
              Update: {
                TableName: table.tableName,
                Key: key('acme', 'ITEM#t2'),
                UpdateExpression: 'SET n = :n',
                ExpressionAttributeValues: { ':n': 1 },
              },
            },
            { ConditionCheck: { TableName: table.tableName, Key: key('acme', 'ITEM#checked'), ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
      await doc.send(
        new BatchWriteCommand({ RequestItems: { [table.tableName]: [{ PutRequest: { Item: { ...key('acme', 'ITEM#batch'), n: 1 } } }] } }),
      );
      // Marshalled, as the low-level client sends it.
      await table.client.send(new PutItemCommand({ TableName: table.tableName, Item: { pk: { S: 'TENANT#acme' }, sk: { S: 'ITEM#low' } } }));
      // Another tenant's record, and another table's, are not this request's.
      await doc.send(new PutCommand({ TableName: table.tableName, Item: { ...key('other', 'ITEM#x'), n: 1 } }));
    });
    expect(await entries('m-all')).toEqual(
      ['ITEM#batch', 'ITEM#delete', 'ITEM#low', 'ITEM#put', 'ITEM#t2', 'ITEM#update', 'ORDER#t1'].map((recordSk) => ({
        tenantId: 'acme',
        recordSk,
        at: 5_000,
      })),
    );
  });

  it('writes an entry before its write: a write that fails leaves its entry (harmless), never the other way round', async () => {
    const moving = { moveId: 'm-fail', tenantId: 'acme' };
    await expect(
      journal.run(moving, () =>
        doc.send(
          new PutCommand({ TableName: table.tableName, Item: { ...key('acme', 'ITEM#refused'), n: 1 }, ConditionExpression: 'attribute_exists(pk)' }),
        ),
      ),
    ).rejects.toThrow();
    expect((await entries('m-fail')).map((entry) => entry.recordSk)).toEqual(['ITEM#refused']);
  });

  it('adds nothing to a request outside a move: no extra write on the normal path', async () => {
    const commands = recordCommands(doc);
    try {
      await doc.send(new PutCommand({ TableName: table.tableName, Item: { ...key('calm', 'ITEM#a'), n: 1 } }));
    } finally {
      commands.stop();
    }
    expect(commands.sent.map((command) => command.name)).toEqual(['PutItemCommand']);
  });
});
