/**
 * `npm start`: synthesizes the app into cdk.out and says what it holds and
 * how to deploy it. (Running the whole service locally is the local
 * runtime's job; until it lands, this is the quickest check that the app
 * builds on this machine.)
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app.ts';
import { ConfigError } from '../lib/config.ts';
import { fromRoot } from '../lib/paths.ts';
import { readFileSync } from 'node:fs';

const cdkJson = JSON.parse(readFileSync(fromRoot('cdk.json'), 'utf8')) as { context: Record<string, unknown> };
const started = performance.now();
const app = new App({ outdir: fromRoot('cdk.out'), context: cdkJson.context });
let stacks;
try {
  stacks = buildApp(app);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
const assembly = app.synth();
const seconds = ((performance.now() - started) / 1000).toFixed(1);

const lines = assembly.stacks.map((stack) => {
  const resources = Object.keys((stack.template as { Resources?: object }).Resources ?? {}).length;
  return `  ${stack.stackName.padEnd(36)} ${String(resources).padStart(3)} resources`;
});
console.log(`
Item Master (${stacks.config.stage}, ${stacks.config.cells.length} cells, ${stacks.config.region}) synthesized to cdk.out in ${seconds} s:

${lines.join('\n')}

Deploy to your AWS account:
  npx cdk bootstrap          # once per account and region
  npm run deploy             # all stacks; the control plane prints the service URL
  curl "$URL/health"

Options: -c stage=prod  -c cells=cell-1,cell-2  -c certificateArn=arn:aws:acm:...  (see README)
Run the tests: npm test
`);
