import { describe, expect, it } from 'vitest';
import { startInOrder, type StartStep } from '../../local/startup.ts';

/** Steps that record what they start and stop; `failing` fails to start, `stuck` fails to stop. */
function steps(names: string[], options: { failing?: string; stuck?: string } = {}) {
  const events: string[] = [];
  const list: StartStep<string[]>[] = names.map((name) => ({
    name,
    async start(log) {
      if (name === options.failing) throw new Error(`${name} would not start`);
      log.push(`start ${name}`);
      if (name === 'nothing-to-stop') return;
      return async () => {
        log.push(`stop ${name}`);
        if (name === options.stuck) throw new Error(`${name} would not stop`);
      };
    },
  }));
  return { events, list };
}

describe('startInOrder', () => {
  it('starts in the listed order and stops in the reverse one, each step once, past a step that fails to stop', async () => {
    const { events, list } = steps(['store', 'host', 'nothing-to-stop', 'front door'], { stuck: 'host' });
    const stop = await startInOrder(list, events);
    await stop();
    await stop();
    expect(events).toEqual(['start store', 'start host', 'start nothing-to-stop', 'start front door', 'stop front door', 'stop host', 'stop store']);
  });

  it('stops what started when a step fails, says which, and throws its error as it is', async () => {
    const { events, list } = steps(['store', 'host', 'front door'], { failing: 'front door' });
    const said: string[] = [];
    const failure = await startInOrder(list, events, (message) => said.push(message)).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toBe('front door would not start');
    expect(events).toEqual(['start store', 'start host', 'stop host', 'stop store']);
    expect(said).toEqual(['could not start front door; stopping what started']);
  });
});
