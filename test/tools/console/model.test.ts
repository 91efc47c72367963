import { describe, expect, it } from 'vitest';
import type { ControlPlaneConnection } from '../../../control-plane/connect.ts';
import { ConsoleModel } from '../../../tools/console/model.ts';

describe('ConsoleModel', () => {
  it('refuses a second apply that arrives while the first is still reading, and frees itself when the first is refused', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const store = {
      readRouting: async () => {
        await gate;
        return { cells: [], version: { version: 7, map: [], overrides: {}, change: '', by: '' }, quotas: [] };
      },
    };
    const model = new ConsoleModel({
      connection: { store, target: 'fake' } as unknown as ControlPlaneConnection,
      health: { read: async () => ({ health: {}, traffic: { slotSeconds: 5, newestSlotAt: 0, cells: {} } }) },
      mode: 'local',
      appName: 'shop',
      by: 'test',
      defaultQuota: { rate: 100, burst: 200 },
      planFile: (version) => `/nonexistent/plan-v${version}.json`,
    });
    const first = model.apply();
    const second = model.apply();
    release();
    await expect(second).rejects.toThrow('an apply started here is running already');
    await expect(first).rejects.toThrow(/no plan at .*plan-v7\.json/);
    // Refused, the first holds nothing: a later apply is judged on its own.
    await expect(model.apply()).rejects.toThrow(/no plan at/);
  });
});
