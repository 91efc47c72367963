import config from './vitest.mutate.config.ts';

/**
 * The suites `npm run mutate:moves` runs against each mutant of
 * `control-plane/move-engine.ts`: the engine's step-by-step suite and the two quick
 * suites that also drive a move in this process. The moves suite
 * (test/control-plane/move-engine.under-load.test.ts, moves under load, killed and resumed)
 * is left out: a minute of DynamoDB Local work a run, against each of some
 * 400 mutants. So the score is what the quick suites catch alone, a floor.
 */
export const moveSuites = ['test/control-plane/move-engine.test.ts', 'test/control-plane/plan.test.ts', 'test/tools/console/server.test.ts'];

export default { ...config, test: { ...config.test, include: moveSuites } };
