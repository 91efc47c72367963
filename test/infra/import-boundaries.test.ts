import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromRoot } from '../../lib/paths.ts';
import { sharedEntryPoints } from '../../lib/shared-layer.ts';

/**
 * Imports point one way. Each top-level folder may import (at run time)
 * only the folders listed for it; type-only imports are erased and may also
 * point where `types` allows. Contracts are leaves.
 */
const FOLDERS = [
  'bin',
  'lib',
  'functions',
  'layers',
  'routing',
  'control-plane',
  'local',
  'bench',
  'tools/cells',
  'tools/deploy',
  'tools/console',
] as const;
type Folder = (typeof FOLDERS)[number];

const VALUE_EDGES: Record<Folder, Folder[]> = {
  // Shared code and contracts: nothing of the app.
  layers: [],
  // The routing core (buckets, the map's codec, the control-plane table's records and reads): contracts only.
  routing: ['layers'],
  // Handlers: the shared layer and the routing core; the mover, the move engine it runs.
  functions: ['layers', 'routing', 'control-plane'],
  // The deploy side: contracts and the routing core's data formats, never handler code (not even its types).
  lib: ['layers', 'routing'],
  bin: ['lib'],
  // The control plane's operations and the move engine: contracts, the routing core, the app's config, never the local runtime.
  'control-plane': ['layers', 'routing', 'lib'],
  // `npm run cells`: the control plane's operations on a command line.
  'tools/cells': ['layers', 'routing', 'lib', 'control-plane'],
  // The local runtime synthesizes the app and reaches it as the tools do.
  local: ['layers', 'routing', 'lib', 'control-plane'],
  bench: ['layers', 'routing', 'lib', 'control-plane', 'local', 'functions'],
  // The wave deploy: the app to synthesize and its names; nothing of the runtime.
  'tools/deploy': ['layers', 'lib'],
  // The operator's console: the control plane's operations, and the actions and views it shares with `cells`; never the local
  // runtime (it reads it over HTTP).
  'tools/console': ['layers', 'routing', 'lib', 'control-plane', 'tools/cells'],
};
// Type-only edges beyond those: none. A shape both sides need is a contract (layers/shared/src/contracts).
const TYPE_EDGES: Partial<Record<Folder, Folder[]>> = {};

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly typeOnly: boolean;
}

function folderOf(file: string): Folder | 'test' | undefined {
  const [top, sub] = file.split(path.sep);
  if (top === 'layers') return 'layers';
  if (top === 'test') return 'test';
  return FOLDERS.find((folder) => folder === top || folder === `${top}/${sub}`);
}

/** The file a specifier of the shared package names, by the package's `exports`. */
function sharedModuleFile(spec: string): string {
  const subpath = `.${spec.slice('@item-master/shared'.length)}`;
  const entry = sharedEntryPoints(fromRoot('layers', 'shared')).find((e) => e.subpath === subpath);
  if (!entry) throw new Error(`${spec}: not exported by the shared package`);
  return path.relative(fromRoot(), entry.source);
}

function importsOf(root: string): Edge[] {
  return readdirSync(fromRoot(root), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .flatMap((file) => {
      const from = path.join(root, file);
      const source = readFileSync(fromRoot(from), 'utf8');
      return [...source.matchAll(/^(?:import|export)(\s+type)?\s[^;]*?from\s+'([^']+)'/gms)].flatMap((match) => {
        const spec = match[2]!;
        const to = spec.startsWith('@item-master/shared')
          ? sharedModuleFile(spec)
          : spec.startsWith('.')
            ? path.normalize(path.join(path.dirname(from), spec))
            : undefined;
        return to ? [{ from, to, typeOnly: match[1] !== undefined }] : [];
      });
    });
}

const edges = ['bin', 'lib', 'functions', 'layers/shared/src', 'routing', 'control-plane', 'local', 'bench', 'tools'].flatMap(importsOf);

/** Every cycle of allowed edges, as a path: a depth-first walk that meets a folder already on its own path. */
function cyclesOf(graph: Record<Folder, Folder[]>): string[] {
  const cycles = new Set<string>();
  const walk = (trail: Folder[]) => {
    for (const next of graph[trail.at(-1)!]) {
      if (trail.includes(next)) cycles.add([...trail.slice(trail.indexOf(next)), next].join(' → '));
      else walk([...trail, next]);
    }
  };
  for (const folder of FOLDERS) walk([folder]);
  return [...cycles];
}

describe('import boundaries', () => {
  it('finds the imports it checks', () => {
    expect(edges.length).toBeGreaterThan(100);
    expect(edges.some((edge) => edge.from.startsWith('functions') && edge.to.startsWith('layers'))).toBe(true);
  });

  it('lets each folder import only the folders it may', () => {
    const wrong = edges.filter((edge) => {
      const from = folderOf(edge.from) as Folder;
      const to = folderOf(edge.to);
      if (to === undefined || to === from) return false;
      if (to === 'test') return true;
      const allowed = [...VALUE_EDGES[from], ...(edge.typeOnly ? (TYPE_EDGES[from] ?? []) : [])];
      return !allowed.includes(to);
    });
    expect(wrong.map((edge) => `${edge.from} → ${edge.to}${edge.typeOnly ? ' (type)' : ''}`)).toEqual([]);
  });

  it('has no cycle between folders: no two import each other, even through others', () => {
    expect(cyclesOf(VALUE_EDGES)).toEqual([]);
    // The check finds one when an edge points back.
    expect(cyclesOf({ ...VALUE_EDGES, lib: [...VALUE_EDGES.lib, 'control-plane'] })).toContain('lib → control-plane → lib');
  });

  it('keeps the contracts leaves: they import nothing but each other', () => {
    const contracts = path.join('layers', 'shared', 'src', 'contracts');
    const files = readdirSync(fromRoot(contracts)).filter((file) => file.endsWith('.ts'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      const source = readFileSync(fromRoot(contracts, file), 'utf8');
      const specs = [...source.matchAll(/from\s+'([^']+)'/g)].map((match) => match[1]);
      expect([file, specs.filter((spec) => !spec!.startsWith('./'))]).toEqual([file, []]);
    }
  });
});
