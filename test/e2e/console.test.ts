import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectLocal, type ControlPlaneConnection } from '../../control-plane/connect.ts';
import type { LocalRuntimeState } from '../../control-plane/local-target.ts';
import { LocalHealth } from '../../tools/console/health.ts';
import { QuotaOperations } from '../../control-plane/quotas.ts';
import { ConsoleModel } from '../../tools/console/model.ts';
import { startConsoleServer, type ConsoleServer } from '../../tools/console/server.ts';
import { startLocalRuntime, type LocalRuntime } from '../../local/runtime.ts';
import { findChromium } from '../support/chromium.ts';
import { eventually } from '../support/eventually.ts';
import { isAlive } from '../support/processes.ts';
import { testContext } from '../support/synth.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';

/**
 * The operator's console in a real Chromium, against the local runtime:
 * the page reads and acts through the console's server, which goes through
 * the same operations as the cells CLI. The console reaches DynamoDB Local
 * through a proxy that the last test cuts, to take the control plane away.
 */
let runtime: LocalRuntime;
let outdir: string;
let connection: ControlPlaneConnection;
let server: ConsoleServer;
let browser: Browser;
let page: Page;
let cutControlPlane: () => Promise<void>;

beforeAll(async () => {
  const executablePath = findChromium();
  outdir = mkdtempSync(path.join(tmpdir(), 'item-master-console-'));
  runtime = await startLocalRuntime({
    port: 0,
    webSocketPort: 0,
    outdir,
    dynamoEndpoint: inject('dynamoEndpoint'),
    context: testContext({ appName: 'console', routingRefreshSeconds: 1 }),
    stateFile: path.join(outdir, 'local-runtime.json'),
    functionOutput: () => undefined,
  });
  const state = JSON.parse(readFileSync(path.join(outdir, 'local-runtime.json'), 'utf8')) as LocalRuntimeState;
  const proxy = await tcpProxy(new URL(state.dynamoEndpoint));
  cutControlPlane = proxy.cut;
  const consoleState = path.join(outdir, 'console-state.json');
  writeFileSync(consoleState, JSON.stringify({ ...state, dynamoEndpoint: proxy.url }));
  connection = connectLocal(consoleState);
  const model = new ConsoleModel({
    connection,
    health: new LocalHealth(runtime.url),
    mode: 'local',
    appName: 'console',
    by: 'console-test',
    defaultQuota: { rate: 100, burst: 200 },
    graceSeconds: 0,
    planFile: (v) => path.join(outdir, `plan-v${v}.json`),
  });
  server = await startConsoleServer(model);
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  await page.goto(server.url);
  await page.locator('#cells-body tr').nth(2).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  connection?.close();
  const pids = runtime?.pids() ?? [];
  await runtime?.stop();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
});

/** Writes an item for the tenant through the front door; answers the cell that served it (`x-cell-id`). */
async function writeFor(tenantId: string): Promise<string> {
  const { access_token: token } = await runtime.issuer!.issue({ tenantId });
  const response = await fetch(`${runtime.url}/tenants/${tenantId}/items/widget-1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Widget', price: { amount: 100, currency: 'EUR' }, stock: 3 }),
  });
  expect(response.status).toBeLessThan(300);
  return response.headers.get('x-cell-id')!;
}

async function cellOfTenantOnPage(tenantId: string): Promise<string | undefined> {
  await page.fill('#tenant-input', tenantId);
  await page.click('#tenant-button');
  const result = page.locator('#tenant-result');
  await expect.poll(() => result.textContent()).not.toMatch(/^Looking for/);
  return (await result.getAttribute('data-cell')) ?? undefined;
}

async function focusedId(): Promise<string> {
  return (await page.evaluate("document.activeElement?.id ?? ''")) as string;
}

/** Confirms the dialog an action opened, after checking that it says what will happen. */
async function confirm(says: RegExp): Promise<void> {
  const dialog = page.locator('#confirm');
  await dialog.waitFor({ state: 'visible' });
  expect(await page.locator('#confirm-text').textContent()).toMatch(says);
  await page.click('#confirm-yes');
  await dialog.waitFor({ state: 'hidden' });
}

describe('the console (npm run console)', () => {
  it('loads with the 3 cells and all 16,384 buckets', async () => {
    expect(await page.locator('#cells-body tr').count()).toBe(3);
    expect(await page.locator('#cells-body th').allTextContents()).toEqual(['cell-1', 'cell-2', 'cell-3']);
    expect(await page.locator('#target').textContent()).toContain('16,384 buckets');
    const legend = await page.locator('#legend-list li').allTextContents();
    expect(legend.map((line) => Number(/: ([\d,]+) buckets/.exec(line)![1]!.replaceAll(',', ''))).reduce((a, b) => a + b)).toBe(16_384);
    // Each cell has its own pattern as well as its colour, named in the legend.
    expect(new Set(legend.map((line) => /\((\w+) pattern\)/.exec(line)![1])).size).toBe(3);
    const { map } = (await page.evaluate("fetch('/api/state').then((r) => r.json())")) as { map: number[] };
    expect(map).toHaveLength(16_384);
  });

  it("shows the default quota and each tenant's own, as cells quota sets them", async () => {
    await expect.poll(() => page.locator('#quota-default').textContent()).toContain('100 requests a second, bursts of 200');
    expect(await page.locator('#quotas-body').textContent()).toContain('No tenant has a quota of its own.');
    await new QuotaOperations({ store: connection.store, defaultQuota: { rate: 100, burst: 200 }, by: 'console-test' }).set('loud', {
      rate: 7,
      burst: 9,
    });
    await expect.poll(() => page.locator('#quotas-body th').allTextContents(), { timeout: 10_000 }).toEqual(['loud']);
    expect(await page.locator('#quotas-body td').allTextContents()).toEqual(expect.arrayContaining(['7', '9', 'console-test']));
  });

  it('finds a tenant in the cell x-cell-id reports, and says so when a tenant is unknown', async () => {
    const served = await writeFor('console-acme');
    expect(await cellOfTenantOnPage('console-acme')).toBe(served);
    expect(await page.locator('#tenant-result').textContent()).toMatch(new RegExp(`console-acme is in bucket \\d+, served by ${served}`));
    expect(await cellOfTenantOnPage('nobody-here')).toBeUndefined();
    expect(await page.locator('#tenant-result').textContent()).toMatch(/tenant nobody-here is unknown/);
    expect(await page.locator('#tenant-result').getAttribute('class')).toBe('error');
  });

  it('shows a bucket, its cell and its tenant count, from the keyboard', async () => {
    await page.focus('#grid');
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowDown');
    await expect.poll(() => page.locator('#bucket-info').textContent()).toMatch(/^Bucket 129 \(row 2, column 2\): cell-1; 0 tenants$/);
  });

  it('reaches every action with the keyboard alone, and a confirmation can be refused from it', async () => {
    // Page scripts as text: the tests compile without the DOM's types.
    await page.evaluate('document.activeElement?.blur()');
    await page.keyboard.press('Tab');
    const reached = new Set<string>();
    for (let i = 0; i < 60; i += 1) {
      reached.add(await focusedId());
      await page.keyboard.press('Tab');
    }
    const actions = (await page.evaluate(
      "[...document.querySelectorAll('button:not([disabled]), input, select, #grid')].filter((e) => !e.closest('dialog')).map((e) => e.id)",
    )) as string[];
    expect(actions.length).toBeGreaterThan(10);
    expect(actions.filter((id) => !reached.has(id))).toEqual([]);

    await page.focus('#drain-cell-1');
    await page.keyboard.press('Enter');
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await focusedId()).toBe('confirm-no');
    await page.keyboard.press('Escape');
    await page.locator('#confirm').waitFor({ state: 'hidden' });
    expect(await focusedId()).toBe('drain-cell-1');
    expect((await connection.store.getCell('cell-1'))!.status).toBe('active');
  });

  it('has no serious or critical accessibility violations (axe-core)', async () => {
    const results = await new AxeBuilder({ page }).analyze();
    const serious = results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.help} (${v.nodes.length})`);
    expect(serious).toEqual([]);
  });

  it('drains and activates a cell, changing the page and the registry', async () => {
    const status = page.locator('#cells-body tr[data-cell="cell-2"] [data-field="status"]');
    await page.click('#drain-cell-2');
    await confirm(/cell-2 keeps serving its tenants/);
    await expect.poll(() => status.textContent()).toBe('draining');
    expect((await connection.store.getCell('cell-2'))!.status).toBe('draining');
    await page.click('#activate-cell-2');
    await confirm(/cell-2 serves its tenants/);
    await expect.poll(() => status.textContent()).toBe('active');
    expect((await connection.store.getCell('cell-2'))!.status).toBe('active');
  });

  it('shows a refused action in its own words', async () => {
    const home = await writeFor('console-acme');
    await page.selectOption('#move-kind', 'tenant');
    await page.fill('#move-subject', 'console-acme');
    await page.selectOption('#move-to', home);
    await page.click('#move-button');
    await confirm(/tenant console-acme/);
    await expect.poll(() => page.locator('#status').textContent()).toBe(`Start the move refused: console-acme is already in ${home}`);
    expect(await page.locator('#status').getAttribute('role')).toBe('alert');
    expect(await page.locator('#moves-body tr').first().textContent()).toBe('No moves yet.');
  });

  it('starts a move that shows its progress and ends with the map changed', async () => {
    const from = await writeFor('console-acme');
    const to = ['cell-1', 'cell-2', 'cell-3'].find((cell) => cell !== from)!;
    const versionBefore = (await connection.store.latestVersion())!.version;
    await page.selectOption('#move-kind', 'tenant');
    await page.fill('#move-subject', 'console-acme');
    await page.selectOption('#move-to', to);
    await page.click('#move-button');
    await confirm(new RegExp(`tenant console-acme is copied to ${to}`));
    const row = page.locator('#moves-body tr').first();
    await expect.poll(() => row.textContent()).toContain(`${from} → ${to}`);
    await eventually(async () => expect(await row.getAttribute('data-state')).toBe('done'), 90_000);
    expect(await row.textContent()).toMatch(/tenant console-acme/);
    // Its progress: the records it copied (the tenant's one item at least) and how long writes were refused.
    expect(Number((await row.locator('td').nth(3).textContent())!.replaceAll(',', ''))).toBeGreaterThanOrEqual(1);
    expect(await row.locator('td').nth(6).textContent()).toMatch(/^\d+\.\d s$/);
    await eventually(
      async () => expect(await page.locator('#versions-body tr').first().locator('th').textContent()).toBe(String(versionBefore + 1)),
      10_000,
    );
    expect(await cellOfTenantOnPage('console-acme')).toBe(to);
    await eventually(async () => expect(await writeFor('console-acme')).toBe(to), 10_000);
    await page.click(`#diff-${versionBefore + 1}`);
    await expect.poll(() => page.locator('#diff').textContent()).toMatch(new RegExp(`console-acme: by bucket → pinned to ${to}`));
  });

  it("charts each cell's requests per second, updated as requests come in", async () => {
    const served = await writeFor('console-traffic');
    await expect
      .poll(
        async () =>
          Number(new RegExp(`${served} [\\d.]+ now, peak ([\\d.]+)`).exec((await page.locator('#chart-summary').textContent()) ?? '')?.[1] ?? 0),
        { timeout: 10_000 },
      )
      .toBeGreaterThan(0);
    expect(await page.locator('#chart polyline').count()).toBe(3);
  });

  it('shows a banner with the last good data and its age when the control plane goes away', async () => {
    expect(await page.locator('#banner').isHidden()).toBe(true);
    await cutControlPlane();
    await page.locator('#banner').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await page.locator('#banner').textContent()).toMatch(/the control plane cannot be read: .*Showing the last good data, read \d+ s ago/);
    // The last good data stays on the page.
    expect(await page.locator('#cells-body tr').count()).toBe(3);
  });
});
