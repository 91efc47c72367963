import { describe, expect, it } from 'vitest';
import { functionLine, requestLine } from '../../local/output-lines.ts';

const at = new Date(2026, 11, 7, 14, 3, 9);

describe('requestLine', () => {
  it('is one line: time, method, path, status, ms, cell and tenant', () => {
    expect(requestLine({ method: 'GET', path: '/tenants/acme/items/i-1', statusCode: 200, ms: 12.4, cellId: 'cell-2' }, at)).toBe(
      '14:03:09 GET    /tenants/acme/items/i-1 200 12 ms cell-2 acme',
    );
  });

  it('marks a 5xx, and has a dash for no cell or no tenant', () => {
    expect(requestLine({ method: 'POST', path: '/health', statusCode: 503, ms: 3 }, at)).toBe('14:03:09 POST   /health 503 ! 3 ms - -');
  });
});

describe('functionLine', () => {
  const emf =
    '[cell-api] {"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"ItemMaster","Dimensions":[["service"]],"Metrics":[{"Name":"Requests","Unit":"Count"}]}]},"service":"cell-api","Requests":1}';
  const log =
    '[router] {"level":"WARN","message":"cell throttled: refusing its requests for a moment","timestamp":"2026-12-07T14:03:09.000Z","service":"router","cold_start":false,"cellId":"cell-1"}';
  const error = '[cell-api] {"level":"ERROR","message":"boom","timestamp":"x","service":"cell-api","error":{"name":"Error","message":"boom"}}';

  it('hides metrics unless verbose', () => {
    expect(functionLine(emf, { verbose: false })).toBeUndefined();
    expect(functionLine(emf, { verbose: true })).toBe(emf);
  });

  it('shows a log line as its level, message and own keys, labelled with its function; warnings and errors marked', () => {
    expect(functionLine(log, { verbose: false })).toBe('~ [router] WARN cell throttled: refusing its requests for a moment  cellId=cell-1');
    expect(functionLine(error, { verbose: false })).toBe('! [cell-api] ERROR boom  error={"name":"Error","message":"boom"}');
  });

  it('passes anything else as it came', () => {
    for (const line of ['[payment] plain text', 'no label', '[router] {not json', '[router] [1,2]'])
      expect(functionLine(line, { verbose: false })).toBe(line);
  });
});
