import { describe, expect, it } from 'vitest';
import { findChromium, NO_CHROMIUM } from '../../support/chromium.ts';

/** Runs `body` with environment variables replaced, and puts them back. */
function withEnv<T>(env: Record<string, string | undefined>, body: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  try {
    for (const [key, value] of Object.entries(env)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    return body();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

describe('finding a Chromium for the browser tests', () => {
  it('fails in one line that says how to get one, never passing silently', () => {
    expect(NO_CHROMIUM).not.toContain('\n');
    expect(NO_CHROMIUM).toMatch(/apt-get install chromium.*npx playwright install chromium.*CHROMIUM_PATH/);
    expect(() => withEnv({ CHROMIUM_PATH: undefined, PATH: '', PLAYWRIGHT_BROWSERS_PATH: '/nonexistent' }, findChromium)).toThrow(NO_CHROMIUM);
    expect(() => withEnv({ CHROMIUM_PATH: '/nonexistent/chromium' }, findChromium)).toThrow(
      /^CHROMIUM_PATH is \/nonexistent\/chromium, which does not exist; no Chromium/,
    );
  });

  it('takes CHROMIUM_PATH first', () => {
    expect(withEnv({ CHROMIUM_PATH: process.execPath }, findChromium)).toBe(process.execPath);
  });
});
