import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import type { CfnProperties, LocalTable } from './assembly.ts';

/** The CreateTable request for a table declared in a template (Table or GlobalTable). */
export function createTableInput(table: LocalTable): CreateTableCommandInput {
  const p = table.properties;
  const stream = p.StreamSpecification?.StreamViewType;
  const indexes = (p.GlobalSecondaryIndexes ?? []).map((index: CfnProperties) => ({
    IndexName: index.IndexName,
    KeySchema: index.KeySchema,
    Projection: index.Projection,
  }));
  return {
    TableName: table.tableName,
    AttributeDefinitions: p.AttributeDefinitions,
    KeySchema: p.KeySchema,
    BillingMode: 'PAY_PER_REQUEST',
    ...(indexes.length && { GlobalSecondaryIndexes: indexes }),
    ...(p.LocalSecondaryIndexes && { LocalSecondaryIndexes: p.LocalSecondaryIndexes }),
    ...(stream && { StreamSpecification: { StreamEnabled: true, StreamViewType: stream } }),
  };
}

/** Creates every table that does not exist yet (with --persist, earlier runs' tables stay). */
export async function createTables(client: DynamoDBClient, tables: readonly LocalTable[]): Promise<void> {
  for (const table of tables) {
    if (await exists(client, table.tableName)) continue;
    await client.send(new CreateTableCommand(createTableInput(table)));
    const ttl = table.properties.TimeToLiveSpecification;
    if (ttl?.Enabled) {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: table.tableName,
          TimeToLiveSpecification: { Enabled: true, AttributeName: ttl.AttributeName },
        }),
      );
    }
  }
}

async function exists(client: DynamoDBClient, tableName: string): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return true;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return false;
    throw error;
  }
}
