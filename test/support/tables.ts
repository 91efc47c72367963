import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb-local.ts';

export function localClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

/**
 * A fresh table with the `pk`/`sk` keys that `CellTable` and
 * `ControlPlaneTable` declare (and an index when given: keys only, plus
 * `include`), under a unique name; `drop` deletes it.
 */
export async function createCellTable(
  endpoint: string,
  prefix = 'cell',
  index?: { name: string; partitionKey: string; sortKey: string; include?: readonly string[] },
) {
  const client = localClient(endpoint);
  const tableName = `${prefix}-${randomUUID()}`;
  const keys = (partitionKey: string, sortKey: string) => [
    { AttributeName: partitionKey, KeyType: 'HASH' as const },
    { AttributeName: sortKey, KeyType: 'RANGE' as const },
  ];
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: ['pk', 'sk', ...(index ? [index.partitionKey, index.sortKey] : [])].map((name) => ({
        AttributeName: name,
        AttributeType: 'S',
      })),
      KeySchema: keys('pk', 'sk'),
      ...(index && {
        GlobalSecondaryIndexes: [
          {
            IndexName: index.name,
            KeySchema: keys(index.partitionKey, index.sortKey),
            Projection: index.include ? { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.include] } : { ProjectionType: 'KEYS_ONLY' },
          },
        ],
      }),
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return {
    tableName,
    client,
    doc,
    drop: async () => {
      await client.send(new DeleteTableCommand({ TableName: tableName }));
      client.destroy();
    },
  };
}
