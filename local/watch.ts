import { watch, type FSWatcher } from 'node:fs';

/** What the watcher reloads: the local runtime, or a test's stand-in. */
export interface Reloadable {
  /** Re-synthesizes and reloads; the names of the functions that changed. */
  reload(): Promise<string[]>;
}

export interface WatchOptions {
  /** The folders whose changes (recursively) reload the runtime. */
  readonly dirs: readonly string[];
  /** One line per reload: the functions it changed. */
  readonly log: (line: string) => void;
  /** One line per failed reload: why. */
  readonly warn: (line: string) => void;
  /** How long a burst of changes (an editor saving several files) is gathered before one reload. @default 300 */
  readonly settleMs?: number;
}

/**
 * `npm run dev`: a change under `dirs` re-synthesizes the app and reloads
 * the functions whose bundle or environment changed. A burst of changes is
 * one reload, reloads never overlap, and a failed one keeps the previous
 * build serving. Returns a function that stops watching.
 */
export function watchAndReload(runtime: Reloadable, options: WatchOptions): () => void {
  let timer: NodeJS.Timeout | undefined;
  let reloading = Promise.resolve();
  const onChange = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(async () => {
        try {
          const changed = await runtime.reload();
          options.log(changed.length ? `reloaded ${changed.join(', ')}` : 'no function changed');
        } catch (error) {
          options.warn(`reload failed, still serving the previous build: ${(error as Error).message}`);
        }
      });
    }, options.settleMs ?? 300);
  };
  const watchers: FSWatcher[] = options.dirs.map((dir) => watch(dir, { recursive: true }, onChange));
  return () => {
    clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
