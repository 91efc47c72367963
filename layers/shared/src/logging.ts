/**
 * Powertools' logger and metrics without the tracer or middy: what a
 * function that runs no X-Ray SDK imports (the router). `observability.ts`
 * builds on it for every other function.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';

export { MetricUnit } from '@aws-lambda-powertools/metrics';

type MetricsLogger = NonNullable<NonNullable<ConstructorParameters<typeof Metrics>[0]>['logger']>;

/** Powertools Metrics' warning when an invocation flushes no metric. */
const NO_METRICS_WARNING = /^No application metrics to publish/;

export interface Logging {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * The logger and metrics of a function, tagged with its cell. The service
 * name and metrics namespace come from the environment the CDK construct
 * sets (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_METRICS_NAMESPACE`); `cellId`
 * is a persistent log key and the default metric dimension, so that every
 * log line and every metric can be filtered by cell. A function without a
 * cell tags each request with the cell it concerns instead.
 */
export function createLogging(
  cellId: string | undefined = process.env.CELL_ID,
  logger: Logger = new Logger(cellId !== undefined ? { persistentKeys: { cellId } } : {}),
): Logging {
  // Metrics' own warnings go through the logger: structured, and at its level. All but one: these functions
  // add metrics on some invocations only, so an invocation with none is no mistake, and warning of it on every
  // invocation would be most of a function's log.
  const warnings: MetricsLogger = {
    debug: (...args) => logger.debug(...(args as [string])),
    info: (...args) => logger.info(...(args as [string])),
    warn: (...args) => (NO_METRICS_WARNING.test(String(args[0])) ? undefined : logger.warn(...(args as [string]))),
    error: (...args) => logger.error(...(args as [string])),
  };
  const metrics = new Metrics({ logger: warnings, ...(cellId !== undefined && { defaultDimensions: { cellId } }) });
  return { logger, metrics };
}

/**
 * What Powertools' logger and metrics middlewares do per invocation, without
 * middy: the Lambda context and the correlation id in every log line, the
 * keys of the previous request dropped, and the metrics flushed (one EMF
 * line) when the handler ends, whether it answered or threw.
 */
export function withLogging<TEvent, TResult>(
  { logger, metrics }: Logging,
  correlationIdOf: (event: TEvent) => string | undefined,
  handler: (event: TEvent, context: Context) => Promise<TResult>,
): (event: TEvent, context: Context) => Promise<TResult> {
  return async (event, context) => {
    logger.resetKeys();
    logger.addContext(context);
    const correlationId = correlationIdOf(event);
    if (correlationId !== undefined) logger.setCorrelationId(correlationId);
    try {
      return await handler(event, context);
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}
