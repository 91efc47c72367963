import type { TestProject } from 'vitest/node';
import { startDynamoDBLocal } from '../../local/dynamodb-local.ts';
import { PrerequisiteError, requireNode } from '../../local/prerequisites.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

/**
 * One DynamoDB Local for the whole run, stopped afterwards even when tests
 * fail. A missing prerequisite (Node, Java) stops the run here, once, in one
 * line, before any suite.
 */
export default async function setup(project: TestProject) {
  let dynamo: Awaited<ReturnType<typeof startDynamoDBLocal>>;
  try {
    requireNode();
    dynamo = await startDynamoDBLocal();
  } catch (error) {
    if (!(error instanceof PrerequisiteError)) throw error;
    process.stderr.write(`npm test: ${error.message}\n`);
    process.exit(1);
  }
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return async () => {
    await dynamo.stop();
  };
}
