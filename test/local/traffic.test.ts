import { describe, expect, it } from 'vitest';
import { TRAFFIC_SLOTS, TrafficMeter } from '../../local/traffic.ts';

describe('TrafficMeter', () => {
  it('counts answers and 5xx per cell in 5-second slots, the last 5 minutes, oldest first', () => {
    let now = 1_000_000_000_000;
    const meter = new TrafficMeter(() => now);
    meter.record(200, 'cell-1');
    meter.record(503, 'cell-1');
    meter.record(404, 'cell-2');
    meter.record(401, undefined);
    now += 5_000;
    meter.record(200, 'cell-1');
    const counts = meter.counts();
    expect(counts.slotSeconds).toBe(5);
    expect(counts.newestSlotAt).toBe(now - (now % 5_000));
    expect(Object.keys(counts.cells)).toEqual(['-', 'cell-1', 'cell-2']);
    for (const series of Object.values(counts.cells)) expect(series.requests).toHaveLength(TRAFFIC_SLOTS);
    expect(counts.cells['cell-1']!.requests.slice(-2)).toEqual([2, 1]);
    expect(counts.cells['cell-1']!.errors.slice(-2)).toEqual([1, 0]);
    expect(counts.cells['cell-2']!.errors.slice(-2)).toEqual([0, 0]);
    expect(counts.cells['-']!.requests.slice(-2)).toEqual([1, 0]);
  });

  it('forgets what is older than its window', () => {
    let now = 1_000_000_000_000;
    const meter = new TrafficMeter(() => now);
    meter.record(200, 'cell-1');
    now += TRAFFIC_SLOTS * 5_000;
    meter.record(200, 'cell-2');
    const counts = meter.counts();
    expect(counts.cells['cell-1']).toBeUndefined();
    expect(counts.cells['cell-2']!.requests.at(-1)).toBe(1);
  });
});
