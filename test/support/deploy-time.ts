import { ConditionalCheckFailedException, DeleteItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { deregistrationRequest, registrationRequest, seedRequest, type CellRegistration } from '../../routing/records.ts';

/**
 * What the deploys do to the control-plane table (the requests the stacks'
 * deploy-time calls make, routing/records.ts), for tests that set up a
 * control plane without synthesizing the app.
 */
export class DeployTimeCalls {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  /** A cell stack's deploy. */
  async register(cell: CellRegistration): Promise<void> {
    await this.client.send(new UpdateItemCommand(registrationRequest(this.tableName, cell)));
  }

  /** A cell stack's deletion. */
  async deregister(cellId: string): Promise<void> {
    await this.client.send(new DeleteItemCommand(deregistrationRequest(this.tableName, cellId)));
  }

  /** The control plane's first deploy; false when a version 1 exists already. */
  async seed(cellIds: readonly string[]): Promise<boolean> {
    try {
      await this.client.send(new PutItemCommand(seedRequest(this.tableName, cellIds)));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
