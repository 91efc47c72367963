import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createObservability, DATA_PLANE, instrument, MetricUnit, parseEnvironment, sdkClientConfig } from '@item-master/shared';
import * as z from 'zod';
import { CellData } from '../../control-plane/cell-data.ts';
import { MoveStore } from '../../control-plane/move-store.ts';
import { MoveEngine } from '../../control-plane/move-engine.ts';
import { ControlPlaneStore } from '../../control-plane/store.ts';

const observability = createObservability();
const { CONTROL_PLANE_TABLE: tableName, MOVE_COPY_SEGMENTS: copySegments } = parseEnvironment(
  'mover',
  z.object({ CONTROL_PLANE_TABLE: z.string().min(1), MOVE_COPY_SEGMENTS: z.coerce.number().int().min(1).max(64).default(4) }),
);
const client = observability.tracer.captureAWSv3Client(new DynamoDBClient(sdkClientConfig(DATA_PLANE)));
const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
const engine = new MoveEngine({
  store: new ControlPlaneStore(client, tableName),
  moves: new MoveStore(doc, tableName),
  cellData: new CellData(doc),
  copySegments,
  log: (message, move) => observability.logger.info(message, { moveId: move.moveId, state: move.state, from: move.from, to: move.to }),
});

const inputSchema = z.object({ moveId: z.string().min(1) });

/** What the move workflow's Choice reads: step again, wait `seconds` first, or stop. */
export interface StepResult {
  readonly next: 'continue' | 'wait' | 'done';
  readonly seconds: number;
}

/** One step of a move (control-plane/move-engine.ts); the workflow calls it until the move is done. */
export const handler = instrument<unknown, StepResult>(observability, async (event) => {
  const { moveId } = inputSchema.parse(event);
  observability.logger.appendKeys({ moveId });
  const outcome = await engine.step(moveId);
  observability.metrics.addMetric('MoveSteps', MetricUnit.Count, 1);
  return { next: outcome.next, seconds: outcome.next === 'wait' ? outcome.seconds : 0 };
});
