import { afterEach, describe, expect, it, vi } from 'vitest';
import { createObservability, instrument } from '../../../layers/shared/src/observability.ts';
import { createLogging, withLogging } from '../../../layers/shared/src/logging.ts';

afterEach(() => vi.restoreAllMocks());

const context = { functionName: 'fn', awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fn' } as never;

describe('createObservability', () => {
  it("sends the metrics' own warnings through the logger: structured, with correlation ids, at its level", () => {
    const { logger, metrics } = createObservability('test-service');
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const printed = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    metrics.addDimension('', 'no name');
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("doesn't meet the requirements"));
    expect(printed).not.toHaveBeenCalled();
  });

  it('warns of nothing when an invocation adds no metric: no mistake for these functions', async () => {
    for (const { logger, run } of [
      (() => {
        const observability = createObservability('test-service');
        return { logger: observability.logger, run: instrument(observability, async () => 'ok') };
      })(),
      (() => {
        const logging = createLogging('test-service');
        return {
          logger: logging.logger,
          run: withLogging(
            logging,
            () => undefined,
            async () => 'ok',
          ),
        };
      })(),
    ]) {
      const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
      const printed = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      expect(await run({}, context)).toBe('ok');
      expect(warn).not.toHaveBeenCalled();
      expect(printed).not.toHaveBeenCalled();
    }
  });
});
