import { Logger } from '@aws-lambda-powertools/logger';
import { search } from '@aws-lambda-powertools/logger/correlationId';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createLogging } from './logging.ts';

/** The logger, metrics and tracer of one function, all tagged with its cell. */
export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
}

/**
 * Creates the Powertools utilities for a function: the logger and metrics of
 * `createLogging` (tagged with the cell), the logger searching events for
 * the correlation id, and the tracer.
 */
export function createObservability(cellId: string | undefined = process.env.CELL_ID): Observability {
  const logger = new Logger({
    ...(cellId !== undefined && { persistentKeys: { cellId } }),
    correlationIdSearchFn: search,
  });
  return { ...createLogging(cellId, logger), tracer: new Tracer() };
}

/** Where the correlation id is found in an ALB event: the ALB's trace header. */
export const ALB_CORRELATION_ID_PATH = 'headers."x-amzn-trace-id"';

/**
 * Wraps a handler with the Powertools middlewares: Lambda context and
 * correlation id in every log line, metrics flushed after every invocation,
 * and a traced handler segment.
 */
export function instrument<TEvent, TResult>(
  observability: Observability,
  handler: (event: TEvent, context: Context) => Promise<TResult>,
  options: { correlationIdPath?: string } = {},
) {
  return middy(handler)
    .use(captureLambdaHandler(observability.tracer, { captureResponse: false }))
    .use(
      injectLambdaContext(observability.logger, {
        correlationIdPath: options.correlationIdPath,
        resetKeys: true,
      }),
    )
    .use(logMetrics(observability.metrics));
}
