import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { whichOnPath } from '../../local/prerequisites.ts';

/** How to get a Chromium, in one line: what the browser tests say when they find none. */
export const NO_CHROMIUM =
  'no Chromium for the browser tests: install one with `apt-get install chromium` (Debian/Ubuntu) or `npx playwright install chromium`, or set CHROMIUM_PATH to a Chromium or Chrome executable';

/** The Chromium the browser tests drive: CHROMIUM_PATH, else one on PATH, else Playwright's own download. Throws NO_CHROMIUM when there is none. */
export function findChromium(): string {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH is ${fromEnv}, which does not exist; ${NO_CHROMIUM}`);
    return fromEnv;
  }
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    const found = whichOnPath(name);
    if (found) return found;
  }
  const downloaded = chromium.executablePath();
  if (downloaded && existsSync(downloaded)) return downloaded;
  throw new Error(NO_CHROMIUM);
}
