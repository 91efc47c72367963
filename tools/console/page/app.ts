/**
 * The console page: reads /api/state every few seconds and renders it; every
 * action asks for confirmation, then posts to the console's API, which goes
 * through the same operations as the `cells` CLI. No framework: the DOM,
 * a canvas for the 16,384 buckets and an SVG for the traffic.
 */
import type { BucketView, CellView, ConsoleSnapshot, ErrorBody, MoveView, TenantView, VersionDiffView } from '../api.ts';

type Snapshot = ConsoleSnapshot & {
  apply: { running: boolean; progress?: { bucketsDone: number; bucketsTotal: number; failed: unknown[] }; error?: string };
};

const POLL_MS = 2_000;
const SIDE = 128;
const PX = 5;
// Okabe-Ito: told apart by most colour-blind readers; each cell also gets its own pattern.
const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#999999'];
const PATTERNS = ['solid', 'diagonal', 'dots', 'horizontal', 'vertical', 'cross', 'backslash', 'checker'] as const;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let state: Snapshot | undefined;
let cursor = 0;
let serverDown = false;

class ApiError extends Error {}

async function api<T>(path: string, init?: { method: 'POST'; body?: unknown }): Promise<T> {
  let response: Response;
  try {
    response = await fetch(
      path,
      init ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body ?? {}) } : undefined,
    );
  } catch {
    throw new ApiError('the console server is not answering: is npm run console still running?');
  }
  const body = (await response.json().catch(() => ({ error: `answered ${response.status}` }))) as T | ErrorBody;
  if (!response.ok) throw new ApiError((body as ErrorBody).error ?? `answered ${response.status}`);
  return body as T;
}

// ---- rendering -------------------------------------------------------------

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  if (dataset) Object.assign(node.dataset, dataset);
  node.append(...children);
  return node;
}

function cellsOf(s: Snapshot): string[] {
  return [...new Set([...s.mapCells, ...s.cells.map((c) => c.cellId)])].sort();
}

/** Replaces a container's children, keeping the focus on the element with the same id. */
function replace(container: HTMLElement, ...children: Node[]): void {
  const focused = document.activeElement instanceof HTMLElement && container.contains(document.activeElement) ? document.activeElement.id : '';
  container.replaceChildren(...children);
  if (focused) document.getElementById(focused)?.focus();
}

const rendered = new Map<string, string>();
/** Renders a part only when its data changed, so that nothing moves under a keyboard user. */
function once(key: string, data: unknown, render: () => void): void {
  const json = JSON.stringify(data);
  if (rendered.get(key) === json) return;
  rendered.set(key, json);
  render();
}

function render(s: Snapshot): void {
  $('target').textContent = `${s.target} · map version ${s.version} · ${s.cells.length} cells · 16,384 buckets`;
  const banner = $('banner');
  if (serverDown) {
    banner.hidden = false;
  } else if (s.unreachable) {
    const age = Math.round((Date.now() - s.readAt) / 1000);
    banner.textContent = `${s.unreachable.error}. Showing the last good data, read ${age} s ago (${new Date(s.readAt).toLocaleTimeString()}).`;
    banner.hidden = false;
  } else {
    banner.hidden = true;
    banner.textContent = '';
  }
  once('cells', s.cells, () => renderCells(s.cells));
  once(
    'moveTargets',
    s.cells.map((c) => c.cellId),
    () => renderMoveTargets(s.cells),
  );
  once('map', [s.map, s.mapCells, s.pinnedBuckets, s.movingBuckets], () => {
    drawGrid(s);
    renderLegend(s);
  });
  once('moves', s.moves, () => renderMoves(s.moves));
  once('apply', s.apply, () => renderApply(s));
  once('versions', s.history, () => renderVersions(s));
  once('quotas', s.quotas, () => renderQuotas(s));
  once('traffic', s.traffic, () => renderTraffic(s));
}

function renderCells(cells: CellView[]): void {
  const rows = cells.map((cell) => {
    const drain = el('button', { type: 'button', id: `drain-${cell.cellId}`, textContent: 'Drain', disabled: cell.status === 'draining' });
    drain.setAttribute('aria-label', `Drain ${cell.cellId}`);
    drain.addEventListener('click', () =>
      act(
        `Drain ${cell.cellId}?`,
        `${cell.cellId} keeps serving its tenants, but takes no buckets in a rebalance plan, and the next plan moves its ${cell.buckets} buckets to the other active cells.`,
        `Drain ${cell.cellId}`,
        () => api(`/api/cells/${encodeURIComponent(cell.cellId)}/drain`, { method: 'POST' }),
      ),
    );
    const activate = el('button', { type: 'button', id: `activate-${cell.cellId}`, textContent: 'Activate', disabled: cell.status === 'active' });
    activate.setAttribute('aria-label', `Activate ${cell.cellId}`);
    activate.addEventListener('click', () =>
      act(
        `Activate ${cell.cellId}?`,
        `${cell.cellId} serves its tenants and takes buckets again in the next rebalance plan.`,
        `Activate ${cell.cellId}`,
        () => api(`/api/cells/${encodeURIComponent(cell.cellId)}/activate`, { method: 'POST' }),
      ),
    );
    const health = el(
      'td',
      { className: `health-${cell.health.state}` },
      `${cell.health.state === 'ok' ? 'Healthy' : cell.health.state === 'alarm' ? 'Unhealthy' : 'Unknown'}: ${cell.health.detail}`,
    );
    return el(
      'tr',
      { dataset: { cell: cell.cellId } },
      el('th', { scope: 'row' }, cell.cellId),
      el('td', { dataset: { field: 'status' } }, cell.status),
      el('td', {}, String(cell.weight)),
      el('td', { dataset: { field: 'buckets' } }, cell.buckets.toLocaleString('en')),
      el('td', {}, String(cell.pinnedTenants)),
      el('td', {}, cell.tableName),
      health,
      el('td', {}, el('div', { className: 'actions' }, drain, activate)),
    );
  });
  replace($('cells-body'), ...rows);
}

function renderMoveTargets(cells: CellView[]): void {
  const select = $<HTMLSelectElement>('move-to');
  const chosen = select.value;
  select.replaceChildren(...cells.map((cell) => el('option', { value: cell.cellId, textContent: cell.cellId })));
  if (cells.some((cell) => cell.cellId === chosen)) select.value = chosen;
}

function renderMoves(moves: MoveView[]): void {
  if (!moves.length) {
    replace($('moves-body'), el('tr', {}, el('td', { colSpan: 9 }, 'No moves yet.')));
    return;
  }
  replace(
    $('moves-body'),
    ...moves.map((m) => {
      const abort = el('button', { type: 'button', id: `abort-${m.moveId}`, textContent: 'Abort' });
      abort.setAttribute('aria-label', `Abort move ${m.moveId}`);
      abort.addEventListener('click', () =>
        act(
          `Abort move ${m.moveId}?`,
          `The move of ${m.kind} ${m.subject} from ${m.from} to ${m.to} is undone: ${m.to}'s copy is deleted and ${m.from} keeps serving. Refused once the move has flipped.`,
          'Abort the move',
          () => api(`/api/moves/${encodeURIComponent(m.moveId)}/abort`, { method: 'POST' }),
        ),
      );
      const revert = el('button', { type: 'button', id: `revert-${m.moveId}`, textContent: 'Revert' });
      revert.setAttribute('aria-label', `Revert move ${m.moveId}`);
      revert.addEventListener('click', () =>
        act(
          `Revert move ${m.moveId}?`,
          `${m.kind} ${m.subject} goes back from ${m.to} to ${m.from}, whose copy was kept current since the flip: the same fence, a moment of refused writes, nothing lost.`,
          'Revert the move',
          () => api(`/api/moves/${encodeURIComponent(m.moveId)}/revert`, { method: 'POST' }),
        ),
      );
      return el(
        'tr',
        { dataset: { move: m.moveId, state: m.state } },
        el('th', { scope: 'row' }, m.moveId),
        el('td', {}, `${m.kind} ${m.subject}${m.kind === 'bucket' ? ` (${m.tenants} tenants)` : ''}`),
        el('td', {}, `${m.from} → ${m.to}`),
        el('td', { dataset: { field: 'state' } }, moveState(m)),
        el('td', {}, m.copied.toLocaleString('en')),
        el('td', {}, `${m.ratePerSecond.toFixed(1)}/s`),
        el('td', {}, m.etaSeconds === undefined ? '—' : `${m.etaSeconds} s`),
        el('td', {}, m.fencedMs === undefined ? '—' : `${(m.fencedMs / 1000).toFixed(1)} s`),
        el('td', {}, m.revertible ? revert : m.finished || m.forgetAt !== undefined ? '' : abort),
      );
    }),
  );
}

function renderApply(s: Snapshot): void {
  const box = $('apply-progress');
  const { running, progress, error } = s.apply;
  if (!running && !progress && !error) {
    box.replaceChildren();
    return;
  }
  const done = progress?.bucketsDone ?? 0;
  const total = progress?.bucketsTotal ?? 0;
  const bar = el('progress', { max: Math.max(total, 1), value: done });
  bar.setAttribute('aria-label', 'Apply progress');
  box.replaceChildren(
    el(
      'p',
      {},
      running ? 'Applying the plan: ' : 'The last apply ended: ',
      bar,
      ` ${done.toLocaleString('en')} of ${total.toLocaleString('en')} buckets moved`,
      error ? ` — ${error}` : '',
    ),
  );
}

function renderQuotas(s: Snapshot): void {
  const { default: fallback, overrides } = s.quotas;
  $('quota-default').textContent =
    `Every other tenant: ${fallback.rate.toLocaleString()} requests a second, bursts of ${fallback.burst.toLocaleString()} (npm run cells -- quota set changes one tenant's).`;
  replace(
    $('quotas-body'),
    ...(overrides.length
      ? overrides.map((q) =>
          el(
            'tr',
            {},
            el('th', { scope: 'row' }, q.tenantId),
            el('td', {}, q.rate.toLocaleString()),
            el('td', {}, q.burst.toLocaleString()),
            el('td', {}, q.updatedAt),
            el('td', {}, q.by),
          ),
        )
      : [el('tr', {}, el('td', { colSpan: 5 }, 'No tenant has a quota of its own.'))]),
  );
}

function renderVersions(s: Snapshot): void {
  replace(
    $('versions-body'),
    ...s.history.map((v) => {
      const show = el('button', { type: 'button', id: `diff-${v.version}`, textContent: 'Show diff' });
      show.setAttribute('aria-label', `Show what version ${v.version} changed`);
      show.addEventListener('click', () => showDiff(v.version));
      return el(
        'tr',
        {},
        el('th', { scope: 'row' }, String(v.version)),
        el('td', {}, v.createdAt ?? ''),
        el('td', {}, v.by),
        el('td', {}, String(v.pinned)),
        el('td', {}, v.change),
        el('td', {}, show),
      );
    }),
  );
}

async function showDiff(version: number): Promise<void> {
  const box = $('diff');
  try {
    const diff = await api<VersionDiffView>(`/api/versions/${version}/diff`);
    const lines: Node[] = [el('h3', {}, `Version ${diff.version}: ${diff.change}`)];
    if (diff.first) lines.push(el('p', {}, 'The first version: every bucket was placed, nothing moved.'));
    else if (!diff.buckets.length && !diff.pins.length) lines.push(el('p', {}, 'No bucket or pin changed (a status or registry change).'));
    if (diff.buckets.length) {
      lines.push(
        el(
          'ul',
          {},
          ...diff.buckets.map((b) =>
            el(
              'li',
              {},
              `${b.count} bucket${b.count === 1 ? '' : 's'} ${b.from} → ${b.to}: ${b.ranges.map(([a, z]) => (a === z ? `${a}` : `${a}–${z}`)).join(', ')}`,
            ),
          ),
        ),
      );
    }
    if (diff.pins.length)
      lines.push(
        el(
          'ul',
          {},
          ...diff.pins.map((p) =>
            el('li', {}, `${p.tenantId}: ${p.from ? `pinned to ${p.from}` : 'by bucket'} → ${p.to ? `pinned to ${p.to}` : 'by bucket'}`),
          ),
        ),
      );
    box.replaceChildren(...lines);
  } catch (error) {
    box.replaceChildren(el('p', { className: 'error' }, (error as Error).message));
  }
}

function renderTraffic(s: Snapshot): void {
  const svg = $('chart') as unknown as SVGSVGElement;
  const ns = 'http://www.w3.org/2000/svg';
  const cells = Object.keys(s.traffic.cells).sort();
  const max = Math.max(1, ...cells.flatMap((c) => s.traffic.cells[c]!));
  const nodes: SVGElement[] = [];
  cells.forEach((cellId) => {
    const series = s.traffic.cells[cellId]!;
    const points = series.map((v, i) => `${(i / Math.max(1, series.length - 1)) * 700 + 10},${210 - (v / max) * 190}`).join(' ');
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', points);
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', colourOf(s, cellId));
    line.setAttribute('stroke-width', '2');
    line.setAttribute('stroke-dasharray', ['', '6 3', '2 3', '8 3 2 3'][cellOrder(s, cellId) % 4]!);
    nodes.push(line);
  });
  svg.replaceChildren(...nodes);
  const minutes = Math.round((s.traffic.slotSeconds * (Object.values(s.traffic.cells)[0]?.length ?? 0)) / 60);
  $('chart-summary').textContent = `Requests per second per cell over the last ${minutes} minutes: ${
    cells
      .map(
        (c) =>
          `${c} ${(s.traffic.cells[c]!.at(-1) ?? 0).toFixed(1)} now, peak ${Math.max(0, ...s.traffic.cells[c]!).toFixed(1)} (${['solid', 'dashed', 'dotted', 'dash-dot'][cellOrder(s, c) % 4]} line)`,
      )
      .join('; ') || 'no traffic yet'
  }.`;
}

// ---- the bucket grid --------------------------------------------------------

function cellOrder(s: Snapshot, cellId: string): number {
  return Math.max(0, cellsOf(s).indexOf(cellId));
}

function colourOf(s: Snapshot, cellId: string): string {
  return COLOURS[cellOrder(s, cellId) % COLOURS.length]!;
}

function patternCanvas(index: number): HTMLCanvasElement {
  const tile = document.createElement('canvas');
  tile.width = tile.height = 8;
  const g = tile.getContext('2d')!;
  g.fillStyle = COLOURS[index % COLOURS.length]!;
  g.fillRect(0, 0, 8, 8);
  g.fillStyle = 'rgba(255,255,255,0.75)';
  g.strokeStyle = 'rgba(255,255,255,0.75)';
  g.lineWidth = 1.5;
  const kind = PATTERNS[index % PATTERNS.length];
  const line = (x1: number, y1: number, x2: number, y2: number) => {
    g.beginPath();
    g.moveTo(x1, y1);
    g.lineTo(x2, y2);
    g.stroke();
  };
  if (kind === 'diagonal') line(0, 8, 8, 0);
  if (kind === 'backslash') line(0, 0, 8, 8);
  if (kind === 'horizontal') line(0, 4, 8, 4);
  if (kind === 'vertical') line(4, 0, 4, 8);
  if (kind === 'cross') {
    line(0, 4, 8, 4);
    line(4, 0, 4, 8);
  }
  if (kind === 'dots') g.fillRect(3, 3, 2, 2);
  if (kind === 'checker') {
    g.fillRect(0, 0, 4, 4);
    g.fillRect(4, 4, 4, 4);
  }
  return tile;
}

function drawGrid(s: Snapshot): void {
  const canvas = $<HTMLCanvasElement>('grid');
  const g = canvas.getContext('2d')!;
  const patterns = s.mapCells.map((cellId) => g.createPattern(patternCanvas(cellOrder(s, cellId)), 'repeat')!);
  for (let bucket = 0; bucket < s.map.length; bucket += 1) {
    g.fillStyle = patterns[s.map[bucket]!]!;
    g.fillRect((bucket % SIDE) * PX, Math.floor(bucket / SIDE) * PX, PX, PX);
  }
  for (const bucket of s.movingBuckets) {
    const [x, y] = [(bucket % SIDE) * PX, Math.floor(bucket / SIDE) * PX];
    g.fillStyle = '#fff';
    g.fillRect(x, y, PX, PX);
    g.strokeStyle = '#000';
    g.lineWidth = 1;
    g.strokeRect(x + 0.5, y + 0.5, PX - 1, PX - 1);
  }
  g.fillStyle = '#000';
  for (const bucket of s.pinnedBuckets) g.fillRect((bucket % SIDE) * PX + 1, Math.floor(bucket / SIDE) * PX + 1, PX - 2, PX - 2);
  drawCursor(g);
  const counts = s.mapCells.map((cellId, i) => `${cellId} ${s.map.filter((c) => c === i).length}`);
  canvas.setAttribute(
    'aria-label',
    `Bucket map of version ${s.version}: ${counts.join(', ')} buckets; ${s.pinnedBuckets.length} with pinned tenants, ${s.movingBuckets.length} moving`,
  );
}

function drawCursor(g: CanvasRenderingContext2D): void {
  if (document.activeElement !== g.canvas) return;
  g.strokeStyle = '#d35400';
  g.lineWidth = 2;
  g.strokeRect((cursor % SIDE) * PX - 1, Math.floor(cursor / SIDE) * PX - 1, PX + 2, PX + 2);
}

function renderLegend(s: Snapshot): void {
  replace(
    $('legend-list'),
    ...cellsOf(s).map((cellId) => {
      const swatch = el('canvas', { width: 24, height: 24 });
      swatch.setAttribute('aria-hidden', 'true');
      const g = swatch.getContext('2d')!;
      g.fillStyle = g.createPattern(patternCanvas(cellOrder(s, cellId)), 'repeat')!;
      g.fillRect(0, 0, 24, 24);
      const index = s.mapCells.indexOf(cellId);
      const buckets = index < 0 ? 0 : s.map.filter((c) => c === index).length;
      return el('li', {}, swatch, `${cellId}: ${buckets.toLocaleString('en')} buckets (${PATTERNS[cellOrder(s, cellId) % PATTERNS.length]} pattern)`);
    }),
  );
}

let bucketRequest = 0;
async function describeBucket(bucket: number): Promise<void> {
  if (!state) return;
  const cellId = state.mapCells[state.map[bucket]!]!;
  const marks = [state.pinnedBuckets.includes(bucket) ? 'a pinned tenant' : '', state.movingBuckets.includes(bucket) ? 'moving' : '']
    .filter(Boolean)
    .join(', ');
  const info = $('bucket-info');
  info.textContent = `Bucket ${bucket} (row ${Math.floor(bucket / SIDE) + 1}, column ${(bucket % SIDE) + 1}): ${cellId}${marks ? `, ${marks}` : ''}; counting tenants…`;
  const asked = ++bucketRequest;
  try {
    const view = await api<BucketView>(`/api/buckets/${bucket}`);
    if (asked !== bucketRequest) return;
    info.textContent = `Bucket ${bucket} (row ${Math.floor(bucket / SIDE) + 1}, column ${(bucket % SIDE) + 1}): ${view.cellId}${marks ? `, ${marks}` : ''}; ${view.tenants} tenant${view.tenants === 1 ? '' : 's'}`;
  } catch (error) {
    if (asked === bucketRequest) info.textContent = `Bucket ${bucket}: ${cellId}; tenants unknown (${(error as Error).message})`;
  }
}

function moveCursor(to: number): void {
  cursor = Math.min(SIDE * SIDE - 1, Math.max(0, to));
  if (state) drawGrid(state);
  void describeBucket(cursor);
}

// ---- actions ------------------------------------------------------------------

/** Asks first, saying what will happen; then acts and says how it went. */
function act(title: string, text: string, confirmLabel: string, action: () => Promise<unknown>, done?: (result: unknown) => void): void {
  const dialog = $<HTMLDialogElement>('confirm');
  const opener = document.activeElement as HTMLElement | null;
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  const yes = $<HTMLButtonElement>('confirm-yes');
  const no = $<HTMLButtonElement>('confirm-no');
  yes.textContent = confirmLabel;
  const close = () => {
    yes.onclick = no.onclick = null;
    dialog.close();
  };
  // However it closes (a button, Escape), the focus goes back where it was.
  dialog.addEventListener('close', () => opener?.focus(), { once: true });
  no.onclick = () => {
    close();
    status(`${confirmLabel}: cancelled`);
  };
  yes.onclick = async () => {
    close();
    status(`${confirmLabel}…`);
    try {
      const result = await action();
      status(`${confirmLabel}: done`);
      done?.(result);
      await refresh();
    } catch (error) {
      status(`${confirmLabel} refused: ${(error as Error).message}`, true);
    }
  };
  dialog.showModal();
  no.focus();
}

function status(message: string, error = false): void {
  const box = $('status');
  box.textContent = message;
  box.className = error ? 'error' : '';
  box.setAttribute('role', error ? 'alert' : 'status');
}

function parseBuckets(text: string): { first: number; last: number } | undefined {
  const match = /^\s*(\d+)\s*(?:[-–]\s*(\d+))?\s*$/.exec(text);
  if (!match) return undefined;
  return { first: Number(match[1]), last: Number(match[2] ?? match[1]) };
}

function wire(): void {
  $('tenant-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const tenantId = $<HTMLInputElement>('tenant-input').value.trim();
    const result = $('tenant-result');
    result.className = '';
    result.textContent = `Looking for ${tenantId}…`;
    try {
      const view = await api<TenantView>(`/api/tenants/${encodeURIComponent(tenantId)}`);
      result.textContent = `${view.tenantId} is in bucket ${view.bucket}, served by ${view.cellId} (${view.source === 'override' ? 'pinned there' : 'by the map'}, version ${view.version}, cell ${view.status}).`;
      result.dataset.cell = view.cellId;
      cursor = view.bucket;
      if (state) drawGrid(state);
    } catch (error) {
      result.className = 'error';
      result.textContent = (error as Error).message;
      delete result.dataset.cell;
    }
  });

  $('move-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const kind = $<HTMLSelectElement>('move-kind').value as 'tenant' | 'bucket';
    const subject = $<HTMLInputElement>('move-subject').value.trim();
    const to = $<HTMLSelectElement>('move-to').value;
    let body: unknown;
    let what: string;
    if (kind === 'tenant') {
      body = { kind, tenantId: subject, to };
      what = `tenant ${subject}`;
    } else {
      const range = parseBuckets(subject);
      if (!range) return status(`"${subject}" is not a bucket or a range such as 5 or 5-9`, true);
      body = { kind, ...range, to };
      what = range.first === range.last ? `bucket ${range.first}` : `buckets ${range.first}–${range.last}`;
    }
    act(
      `Move ${what} to ${to}?`,
      `The data of ${what} is copied to ${to} while it keeps serving; at the flip its writes are refused for a moment (reads go on), then ${to} serves it and the source's copy is deleted after the grace period.`,
      'Start the move',
      () => api<MoveView>('/api/moves', { method: 'POST', body }),
      (move) => status(`Move ${(move as MoveView).moveId} started: ${what} from ${(move as MoveView).from} to ${to}`),
    );
  });

  $('plan-button').addEventListener('click', () =>
    act(
      'Plan a rebalance?',
      'The fewest bucket moves that even out the active cells by weight are worked out from the current map and saved; nothing moves until the plan is applied.',
      'Make the plan',
      () =>
        api<{ basedOnVersion: number; moveCount: number; moves: Array<{ from: string; to: string; count: number }> }>('/api/plan', {
          method: 'POST',
        }),
      (plan) => {
        const p = plan as { basedOnVersion: number; moveCount: number; moves: Array<{ from: string; to: string; count: number }> };
        $('plan-result').replaceChildren(
          el('p', {}, `Plan from map version ${p.basedOnVersion}: ${p.moveCount} bucket moves.`),
          el('ul', {}, ...p.moves.map((m) => el('li', {}, `${m.count} buckets ${m.from} → ${m.to}`))),
        );
      },
    ),
  );
  $('apply-button').addEventListener('click', () =>
    act(
      'Apply the saved plan?',
      'The saved plan of the current map version is carried out as bucket moves, two at a time, each tenant serving throughout. Progress shows under Moves.',
      'Apply the plan',
      () => api('/api/apply', { method: 'POST' }),
    ),
  );

  const canvas = $<HTMLCanvasElement>('grid');
  canvas.addEventListener('keydown', (event) => {
    const moves: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -SIDE, ArrowDown: SIDE, PageUp: -8 * SIDE, PageDown: 8 * SIDE };
    if (event.key in moves) moveCursor(cursor + moves[event.key]!);
    else if (event.key === 'Home') moveCursor(0);
    else if (event.key === 'End') moveCursor(SIDE * SIDE - 1);
    else return;
    event.preventDefault();
  });
  canvas.addEventListener('focus', () => moveCursor(cursor));
  canvas.addEventListener('blur', () => state && drawGrid(state));
  let hovered = -1;
  canvas.addEventListener('mousemove', (event) => {
    const rect = canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) / rect.width) * SIDE);
    const y = Math.floor(((event.clientY - rect.top) / rect.height) * SIDE);
    const bucket = y * SIDE + x;
    if (bucket === hovered || x < 0 || y < 0 || x >= SIDE || y >= SIDE) return;
    hovered = bucket;
    canvas.title = `bucket ${bucket}`;
    void describeBucket(bucket);
  });
}

async function refresh(): Promise<void> {
  try {
    state = await api<Snapshot>('/api/state');
    serverDown = false;
    render(state);
  } catch (error) {
    const banner = $('banner');
    if (state) {
      serverDown = error instanceof ApiError && error.message.startsWith('the console server');
      const age = Math.round((Date.now() - state.readAt) / 1000);
      banner.textContent = `${(error as Error).message}. Showing the last good data, read ${age} s ago.`;
      banner.hidden = false;
    } else {
      banner.textContent = (error as Error).message;
      banner.hidden = false;
    }
  }
}

wire();
void refresh();
setInterval(() => void refresh(), POLL_MS);

/** A move's state in words: a flipped move waiting to forget its source's copy says until when. */
function moveState(m: MoveView): string {
  if (m.revertedBy && !m.finished) return `being reverted by ${m.revertedBy}`;
  if (m.revertedBy) return `reverted by ${m.revertedBy}`;
  if (m.forgetAt !== undefined)
    return `flipped; ${m.revertible ? 'revertible until' : "the source's copy is forgotten at"} ${new Date(m.forgetAt).toISOString().slice(11, 19)} UTC`;
  return (m.revertOf ? `${m.state} (reverting ${m.revertOf})` : m.state) + (m.error ? `: ${m.error}` : '');
}
