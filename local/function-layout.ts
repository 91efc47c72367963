import { cpSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fromRoot } from '../lib/paths.ts';

/**
 * Lays out a function as Lambda runs it, in `dir` (outside the repository, so
 * that nothing resolves from the project's own node_modules by accident):
 * the bundled asset as the task root, every layer's `nodejs/node_modules`
 * entry beside it (Lambda resolves them from /opt/nodejs/node_modules), and
 * the AWS SDK, which the Node.js runtime provides. Returns the entry file.
 */
export function layOutFunction(dir: string, codeDir: string, layerDirs: readonly string[], handler = 'index.handler'): string {
  cpSync(codeDir, dir, { recursive: true });
  const modules = path.join(dir, 'node_modules');
  mkdirSync(modules, { recursive: true });
  for (const layerDir of layerDirs) {
    const layerModules = path.join(layerDir, 'nodejs', 'node_modules');
    for (const name of readdirSync(layerModules)) linkModule(path.join(layerModules, name), path.join(modules, name));
  }
  linkModule(fromRoot('node_modules', '@aws-sdk'), path.join(modules, '@aws-sdk'));
  const moduleName = handler.slice(0, handler.lastIndexOf('.'));
  return path.join(dir, `${moduleName}.mjs`);
}

/** Links a package, or each package of a scope (so that scopes from several sources merge). */
function linkModule(target: string, link: string): void {
  if (!path.basename(target).startsWith('@')) {
    symlinkSync(target, link, 'dir');
    return;
  }
  mkdirSync(link, { recursive: true });
  for (const name of readdirSync(target)) symlinkSync(path.join(target, name), path.join(link, name), 'dir');
}
