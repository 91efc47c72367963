import { Logger } from '@aws-lambda-powertools/logger';
import { search } from '@aws-lambda-powertools/logger/correlationId';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';

/** The logger, metrics and tracer of one function, all tagged with its cell. */
export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
}

/**
 * Creates the Powertools utilities for a function. The service name and metrics
 * namespace come from the environment the CDK construct sets
 * (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_METRICS_NAMESPACE`); `cellId` is a
 * persistent log key and the default metric dimension, so that every log line
 * and every metric can be filtered by cell. A function without a cell tags
 * each request with the cell it concerns instead.
 */
export function createObservability(cellId: string | undefined = process.env.CELL_ID): Observability {
  const logger = new Logger({
    ...(cellId !== undefined && { persistentKeys: { cellId } }),
    correlationIdSearchFn: search,
  });
  // Metrics' own warnings (an invocation with no metrics) go through the logger: structured, and at its level.
  const metrics = new Metrics({ logger, ...(cellId !== undefined && { defaultDimensions: { cellId } }) });
  const tracer = new Tracer();
  return { logger, metrics, tracer };
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
