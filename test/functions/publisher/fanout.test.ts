import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { itemTopic, tenantTopic } from '../../../layers/shared/src/contracts/connections.ts';
import { BatchSubscriptions, fanOut, GoneError, type Poster } from '../../../functions/publisher/fanout.ts';
import { connectionsTable } from '../../support/connections.ts';

const connections = connectionsTable(inject('dynamoEndpoint'));

describe('fan-out', () => {
  it('reaches 1,000 subscribers of a tenant with one update', async () => {
    const tenant = `fan-${randomUUID().slice(0, 8)}`;
    const ids = Array.from({ length: 1000 }, (_, i) => `fan-${i}`);
    for (const id of ids) await connections.store.subscribe(await connections.store.open(id, tenant), [tenantTopic(tenant)]);
    const received = new Map<string, string>();
    const poster: Poster = { post: async (id, data) => void received.set(id, data) };
    const result = await fanOut(
      connections.store,
      poster,
      { type: 'item.updated', tenantId: tenant },
      { tenantId: tenant, topics: [tenantTopic(tenant), itemTopic(tenant, 'w')] },
    );
    expect(result).toEqual({ sent: 1000, gone: 0, failed: 0 });
    expect([...received.keys()].sort()).toEqual([...ids].sort());
    expect(new Set(received.values())).toEqual(new Set([JSON.stringify({ type: 'item.updated', tenantId: tenant })]));
  }, 60_000);

  it('removes gone connections, and one failing connection stops none of the others', async () => {
    const tenant = `mixed-${randomUUID().slice(0, 8)}`;
    for (const id of ['ok-1', 'gone-1', 'broken-1', 'ok-2'])
      await connections.store.subscribe(await connections.store.open(`${tenant}-${id}`, tenant), [tenantTopic(tenant)]);
    const delivered: string[] = [];
    const failures: string[] = [];
    const poster: Poster = {
      post: async (id) => {
        if (id.endsWith('gone-1')) throw new GoneError(id);
        if (id.endsWith('broken-1')) throw new Error('socket reset');
        delivered.push(id);
      },
    };
    const result = await fanOut(connections.store, poster, { type: 'x' }, { tenantId: tenant, topics: [tenantTopic(tenant)] }, (id) =>
      failures.push(id),
    );
    expect(result).toEqual({ sent: 2, gone: 1, failed: 1 });
    expect(delivered.sort()).toEqual([`${tenant}-ok-1`, `${tenant}-ok-2`]);
    expect(failures).toEqual([`${tenant}-broken-1`]);
    expect(await connections.store.get(`${tenant}-gone-1`)).toBeUndefined();
    expect((await connections.store.subscribers(tenant, [tenantTopic(tenant)])).sort()).toEqual([
      `${tenant}-broken-1`,
      `${tenant}-ok-1`,
      `${tenant}-ok-2`,
    ]);
  });
});

describe('one batch of changes', () => {
  it("reads each tenant's subscriptions once, posts to the subscribers of each record, and closes a gone connection once", async () => {
    const tenant = `batch-${randomUUID().slice(0, 8)}`;
    const other = `other-${randomUUID().slice(0, 8)}`;
    for (const id of ['a', 'b', 'gone'])
      await connections.store.subscribe(await connections.store.open(`${tenant}-${id}`, tenant), [tenantTopic(tenant)]);
    await connections.store.subscribe(await connections.store.open(`${tenant}-item`, tenant), [itemTopic(tenant, 'w1')]);
    await connections.store.subscribe(await connections.store.open(`${other}-item`, other), [itemTopic(other, 'w1')]);
    const reads: string[] = [];
    const closes: string[] = [];
    const counted = {
      subscriptions: (tenantId: string) => {
        reads.push(tenantId);
        return connections.store.subscriptions(tenantId);
      },
      close: (connectionId: string) => {
        closes.push(connectionId);
        return connections.store.close(connectionId);
      },
    };
    const batch = new BatchSubscriptions(counted);
    const posts: string[] = [];
    const poster: Poster = {
      post: async (id) => {
        if (id.endsWith('-gone')) throw new GoneError(id);
        posts.push(id);
      },
    };
    const change = (tenantId: string, item: string) => ({ tenantId, topics: [tenantTopic(tenantId), itemTopic(tenantId, item)] });
    const results = [];
    for (const audience of [change(tenant, 'w1'), change(tenant, 'w2'), change(other, 'w1'), change(tenant, 'w1')]) {
      results.push(await fanOut(batch, poster, { type: 'item.updated' }, audience));
    }

    expect(reads.sort()).toEqual([other, tenant].sort());
    expect(results).toEqual([
      { sent: 3, gone: 1, failed: 0 },
      { sent: 2, gone: 0, failed: 0 },
      { sent: 1, gone: 0, failed: 0 },
      { sent: 3, gone: 0, failed: 0 },
    ]);
    expect(posts.filter((id) => id === `${tenant}-item`)).toHaveLength(2);
    expect(posts.filter((id) => id === `${other}-item`)).toHaveLength(1);
    expect(closes).toEqual([`${tenant}-gone`]);
    expect(await connections.store.get(`${tenant}-gone`)).toBeUndefined();
  });

  it("reads a tenant's subscriptions again after a failed read", async () => {
    let calls = 0;
    const batch = new BatchSubscriptions({
      subscriptions: async () => {
        calls += 1;
        if (calls === 1) throw new Error('throttled');
        return [{ topic: 'TENANT#t', connectionId: 'c-1' }];
      },
      close: async () => undefined,
    });
    await expect(batch.subscribers('t', ['TENANT#t'])).rejects.toThrow('throttled');
    expect(await batch.subscribers('t', ['TENANT#t'])).toEqual(['c-1']);
    expect(await batch.subscribers('t', ['TENANT#t#ITEM#x'])).toEqual([]);
    expect(calls).toBe(2);
  });
});
