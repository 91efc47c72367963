import { LambdaClient } from '@aws-sdk/client-lambda';
import { ALB_CORRELATION_ID_PATH, createObservability, instrument } from '@item-master/shared';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { LambdaCellInvoker } from './lambda-invoker.ts';
import { routeRequest, type RouterDeps } from './router.ts';
import { evenSplit } from './routing.ts';
import { loadRouterConfig } from './config.ts';

const observability = createObservability();
const config = loadRouterConfig(process.env);
const lambda = observability.tracer.captureAWSv3Client(new LambdaClient({}));
const deps: RouterDeps = {
  cells: config.cellIds,
  map: evenSplit(config.cellIds),
  invoker: new LambdaCellInvoker(lambda, config.cellFunctions),
  observability,
};

export const handler = instrument<ALBEvent, ALBResult>(
  observability,
  (event) => routeRequest(event, deps),
  { correlationIdPath: ALB_CORRELATION_ID_PATH },
);
