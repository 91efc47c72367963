import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromRoot } from '../../lib/paths.ts';

/** The docs a reader follows from the README: the README, BENCHMARKS.md and every page under docs/. */
const PAGES = [
  'README.md',
  'BENCHMARKS.md',
  ...readdirSync(fromRoot('docs'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => path.join('docs', file)),
];

/** GitHub's anchor of a heading: lower case, punctuation but hyphens dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, '')
    .replace(/ /g, '-');
}

function headingsOf(markdown: string): Set<string> {
  const outsideCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...outsideCode.matchAll(/^#{1,6} (.+)$/gm)].map((match) => anchorOf(match[1]!)));
}

/** Every relative link of a page: its target file (from the repository root) and anchor. */
function linksOf(page: string): Array<{ text: string; file: string; anchor?: string }> {
  const markdown = readFileSync(fromRoot(page), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return [...markdown.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1]!)
    .filter((target) => !/^[a-z]+:/.test(target))
    .map((target) => {
      const [file = '', anchor] = target.split('#');
      return { text: target, file: file === '' ? page : path.normalize(path.join(path.dirname(page), file)), ...(anchor && { anchor }) };
    });
}

describe('the docs', () => {
  it('anchors headings as GitHub does', () => {
    expect(anchorOf('Cells and routing: `npm run cells`')).toBe('cells-and-routing-npm-run-cells');
    expect(anchorOf('Waves, canaries and bakes')).toBe('waves-canaries-and-bakes');
  });

  it.each(PAGES)('%s links only to files and headings that exist', (page) => {
    const broken = linksOf(page).filter(({ file, anchor }) => {
      if (!existsSync(fromRoot(file))) return true;
      return anchor !== undefined && file.endsWith('.md') && !headingsOf(readFileSync(fromRoot(file), 'utf8')).has(anchor);
    });
    expect(broken.map((link) => link.text)).toEqual([]);
  });

  it('keeps the README an entry point: short, with the quick start and a link to every page under docs/', () => {
    const readme = readFileSync(fromRoot('README.md'), 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(220);
    expect(readme).toContain('npm install && npm start');
    const linked = new Set(linksOf('README.md').map((link) => link.file));
    const unlinked = PAGES.filter((page) => path.dirname(page) === 'docs' && !linked.has(page));
    expect(unlinked).toEqual([]);
  });

  it('lists every design page in the design notes', () => {
    const linked = new Set(linksOf('docs/design-notes.md').map((link) => link.file));
    const designPages = PAGES.filter((page) => path.dirname(page) === path.join('docs', 'design'));
    expect(designPages.length).toBeGreaterThanOrEqual(5);
    expect(designPages.filter((page) => !linked.has(page))).toEqual([]);
  });
});
