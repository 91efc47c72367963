import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app.ts';
import { ConfigError } from '../lib/config.ts';

const app = new App();
try {
  buildApp(app);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // One clear message naming the bad fields, not a stack trace.
  console.error(error.message);
  process.exit(1);
}
