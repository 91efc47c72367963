import type { TestProject } from 'vitest/node';
import { startDynamoDBLocal } from '../../local/dynamodb-local.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

/** One DynamoDB Local for the whole run, stopped afterwards even when tests fail. */
export default async function setup(project: TestProject) {
  const dynamo = await startDynamoDBLocal();
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return async () => {
    await dynamo.stop();
  };
}
