/**
 * `cdk synth` of the whole app for a growing number of cells, each in a
 * fresh process as the CLI runs it, timed inside the process (the app's
 * construction and synthesis, bundling included) and from outside.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fromRoot } from '../lib/paths.ts';
import { runNode } from './node-process.ts';

const SYNTH = `
import { synthesize } from ${JSON.stringify(fromRoot('local', 'synthesis.ts'))};
const [outdir, cells] = process.argv.slice(-2);
const started = performance.now();
synthesize(outdir, { cells: cells.split(',') });
// Marked: the synthesis report goes to the same stdout.
process.stdout.write('\\nsynth-ms=' + (performance.now() - started) + '\\n');
`;

export interface SynthesisRun {
  readonly cells: number;
  /** Seconds inside the process: building the app and synthesizing it. */
  readonly synthSeconds: number;
  /** Seconds for the whole process, Node.js and TypeScript loading included. */
  readonly processSeconds: number;
  /** Resources in the largest cell stack and in the control-plane stack. */
  readonly cellStackResources: number;
  readonly controlPlaneResources: number;
}

export async function synthesizeCells(count: number): Promise<SynthesisRun> {
  const outdir = mkdtempSync(path.join(tmpdir(), 'bench-synth-'));
  try {
    const cells = Array.from({ length: count }, (_, i) => `cell-${i + 1}`).join(',');
    const started = performance.now();
    const stdout = await runNode(['--import', 'tsx', '--input-type=module', '-e', SYNTH, outdir, cells], { cwd: fromRoot() }, 'synthesis');
    const processSeconds = (performance.now() - started) / 1000;
    const resources = (file: string) =>
      Object.keys((JSON.parse(readFileSync(path.join(outdir, file), 'utf8')) as { Resources: object }).Resources).length;
    const cellTemplates = readdirSync(outdir).filter((file) => file.startsWith('Cell-') && file.endsWith('.template.json'));
    if (cellTemplates.length !== count) throw new Error(`expected ${count} cell templates, found ${cellTemplates.length}`);
    return {
      cells: count,
      synthSeconds: Number(/^synth-ms=([\d.]+)$/m.exec(stdout)?.[1] ?? Number.NaN) / 1000,
      processSeconds,
      cellStackResources: Math.max(...cellTemplates.map(resources)),
      controlPlaneResources: resources('ControlPlane.template.json'),
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
