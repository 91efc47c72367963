/**
 * zod's English messages for `zod/mini`, which loads none of its own
 * (without them every issue reads "Invalid input"). A module that parses
 * with zod/mini schemas imports this once, for its effect.
 *
 * Why zod/mini there: it is tree-shakable (some 15 KB with these messages,
 * against 85 KB for the classic API), so a function that bundles nothing
 * else of zod (the router) starts some 10 ms sooner
 * (docs/design/performance.md). Its schemas are zod schemas all
 * the same: `parse`, `safeParse`, `z.infer`.
 */
import en from 'zod/v4/locales/en.js';
import { config } from 'zod/mini';

config(en());
