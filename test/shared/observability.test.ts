import { afterEach, describe, expect, it, vi } from 'vitest';
import { createObservability } from '../../layers/shared/src/observability.ts';

afterEach(() => vi.restoreAllMocks());

describe('createObservability', () => {
  it('sends the metrics\' own warnings through the logger: structured, with correlation ids, at its level', () => {
    const { logger, metrics } = createObservability('test-service');
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const printed = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    metrics.publishStoredMetrics();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('No application metrics to publish'));
    expect(printed).not.toHaveBeenCalled();
  });
});
