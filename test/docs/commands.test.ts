import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromRoot } from '../../lib/paths.ts';

/**
 * The commands the docs show are commands the project has: every `npm run`
 * script exists, and every subcommand and option a doc gives a tool is one
 * its `--help` lists. (What they do is run by the tests of each tool.)
 */
const PAGES = [
  'README.md',
  ...readdirSync(fromRoot('docs'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => path.join('docs', file)),
];

const TOOLS: Record<string, string> = {
  start: 'local/cli.ts',
  cells: 'tools/cells/cli.ts',
  console: 'tools/console/cli.ts',
  deploy: 'tools/deploy/cli.ts',
  token: 'local/token.ts',
  bench: 'bench/index.ts',
};

/** Each `npm start …` and `npm run <script> …` a page shows, as the words after npm, up to the end of the command. */
function commandsOf(page: string): string[][] {
  const text = readFileSync(fromRoot(page), 'utf8');
  return [...text.matchAll(/npm (start|run [a-z:]+)((?: +(?:-- )?[-\w.,=<>[\]]+)*)/g)].map((match) => [
    ...match[1]!.split(' '),
    ...match[2]!.trim().split(/ +/).filter(Boolean),
  ]);
}

const shown = PAGES.flatMap((page) => commandsOf(page).map((words) => ({ page, words })));
const scripts = Object.keys((JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
const helpOf = (tool: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', fromRoot(TOOLS[tool]!), '--help'], { cwd: fromRoot(), encoding: 'utf8', timeout: 60_000 }).stdout;

describe('the commands the docs show', () => {
  it('finds them', () => {
    expect(shown.length).toBeGreaterThan(50);
    expect(shown.some(({ words }) => words.join(' ').startsWith('run cells -- move'))).toBe(true);
  });

  it('name scripts the project has', () => {
    const missing = shown.filter(({ words }) => words[0] === 'run' && !scripts.includes(words[1]!));
    expect(missing.map(({ page, words }) => `${page}: npm ${words.join(' ')}`)).toEqual([]);
  });

  it.each(Object.keys(TOOLS))('give npm %s only the subcommands and options its --help lists', (tool) => {
    const help = helpOf(tool);
    expect(help).toMatch(/^usage:/);
    const uses = shown.filter(({ words }) => (tool === 'start' ? words[0] === 'start' : words[0] === 'run' && words[1] === tool));
    const unknown = uses.flatMap(({ page, words }) => {
      const args = words.slice(tool === 'start' ? 1 : 2).filter((word) => word !== '--');
      // The first word of a cells command is its subcommand; options are the words that start with a dash.
      const checked = [...(tool === 'cells' && args[0] && !args[0].startsWith('-') ? [args[0]] : []), ...args.filter((w) => /^--?[a-z]/.test(w))];
      return checked
        .filter((word) => !new RegExp(`(^|[\\s[|])${word.split('=')[0]!.replace(/[-[\]]/g, '\\$&')}\\b`, 'm').test(help))
        .map((word) => `${page}: ${word}`);
    });
    expect(unknown).toEqual([]);
  });
});
