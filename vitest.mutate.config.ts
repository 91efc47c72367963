import path from 'node:path';
import base from './vitest.config.ts';

/**
 * The suites `npm run mutate` runs against each mutant: those that exercise the
 * core modules in this process. End-to-end suites run the code in child
 * processes, where a mutant is never switched on, so they would only slow it;
 * the moves suite (a minute of DynamoDB Local work per mutant) waits for the
 * moves module's own run (docs/quality.md).
 */
export const mutationSuites = [
  'test/functions/router/router.test.ts',
  'test/functions/router/routing-cache.test.ts',
  'test/routing/routing.test.ts',
  'test/layers/shared/auth.test.ts',
  'test/functions/cell-api/app.test.ts',
  'test/functions/cell-api/versioned-store.test.ts',
  'test/functions/cell-api/order-store.test.ts',
  'test/functions/cell-api/saga-input.test.ts',
  'test/functions/cell-api/ownership.test.ts',
  'test/functions/cell-api/directory.test.ts',
  'test/functions/entity-recipe.test.ts',
  'test/control-plane/store.test.ts',
  'test/control-plane/plan.test.ts',
  'test/control-plane/tenants.test.ts',
  'test/local/function-host.test.ts',
  'test/local/streams.test.ts',
];

const shared = (file: string) => path.join(import.meta.dirname, 'layers', 'shared', 'src', file);

// Spread, not mergeConfig: that would add these to the base's include instead of replacing it.
export default {
  ...base,
  // The layer's package resolves through node_modules to the project itself, not to Stryker's mutated copy:
  // its imports go to the copy's sources instead.
  resolve: {
    alias: [
      { find: /^@item-master\/shared$/, replacement: shared('index.ts') },
      { find: /^@item-master\/shared\/(.+)$/, replacement: shared('$1.ts') },
    ],
  },
  test: { ...base.test, include: mutationSuites },
};
