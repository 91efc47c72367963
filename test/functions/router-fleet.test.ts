import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AwsApi } from '../../functions/router/aws-api.ts';
import { FleetTable, RouterFleet, type FleetStore } from '../../functions/router/router-fleet.ts';
import { CONTROL_PLANE_READ } from '../../layers/shared/src/sdk-timeouts.ts';
import { awsEnv } from '../support/aws-api.ts';
import { createCellTable } from '../support/tables.ts';

describe('RouterFleet', () => {
  function fakeStore(counts: Array<number | Error>) {
    const beats: Array<[string, number]> = [];
    const store: FleetStore = {
      beat: async (instanceId, expiresAtMs) => void beats.push([instanceId, expiresAtMs]),
      count: async () => {
        const next = counts.shift() ?? 1;
        if (next instanceof Error) throw next;
        return next;
      },
    };
    return { store, beats };
  }

  it("gives each instance 1/n of every quota, counting at most once per beat interval, in the request's background", async () => {
    let now = 1_000;
    const { store, beats } = fakeStore([4, 8]);
    const fleet = new RouterFleet({ store, instanceId: 'me', beatMs: 10_000, lifeMs: 30_000, now: () => now });
    expect(fleet.share()).toBe(1);
    await fleet.beat();
    expect(fleet.share()).toBe(1 / 4);
    now += 9_999;
    expect(fleet.share()).toBe(1 / 4);
    expect(beats).toEqual([['me', 31_000]]);
    now += 1;
    fleet.share();
    await fleet.beat();
    expect(fleet.share()).toBe(1 / 8);
    expect(beats).toHaveLength(2);
  });

  it('keeps the last count when a beat fails, and says so', async () => {
    const errors: unknown[] = [];
    let now = 0;
    const { store } = fakeStore([5, new Error('throttled')]);
    const fleet = new RouterFleet({ store, beatMs: 1, now: () => now, onError: (error) => errors.push(error) });
    await fleet.beat();
    now += 1;
    await fleet.beat();
    expect([fleet.instances(), String(errors[0])]).toEqual([5, 'Error: throttled']);
  });
});

describe('FleetTable', () => {
  let table: Awaited<ReturnType<typeof createCellTable>>;
  beforeAll(async () => {
    table = await createCellTable(inject('dynamoEndpoint'), 'fleet');
  });
  afterAll(() => table.drop());

  it('counts the instances whose heartbeat is alive, each once however often it beats', async () => {
    const fleet = new FleetTable(new AwsApi('dynamodb', CONTROL_PLANE_READ, awsEnv('dynamodb', inject('dynamoEndpoint'))), table.tableName);
    const now = 1_800_000_000_000;
    await fleet.beat('a', now + 30_000);
    await fleet.beat('a', now + 40_000);
    await fleet.beat('b', now + 30_000);
    await fleet.beat('gone', now - 1_000);
    expect(await fleet.count(now)).toBe(2);
    expect(await fleet.count(now + 35_000)).toBe(1);
  });
});
