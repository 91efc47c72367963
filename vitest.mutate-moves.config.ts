import config from './vitest.mutate.config.ts';

/**
 * The suites `npm run mutate:moves` runs against each mutant of
 * `control-plane/moves.ts`: the engine's step-by-step suite (seconds), the
 * moves suite (a minute of DynamoDB Local work a run, which is why the module
 * has a run of its own) and the two quick suites that also drive a move in
 * this process.
 */
export const moveSuites = [
  'test/control-plane/move-engine.test.ts',
  'test/control-plane/moves.test.ts',
  'test/control-plane/plan.test.ts',
  'test/console/server.test.ts',
];

export default { ...config, test: { ...config.test, include: moveSuites } };
