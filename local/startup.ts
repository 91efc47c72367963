/** How to undo what a step started. */
export type Stop = () => Promise<void>;

/** One step of a start: it starts one thing and says how to stop it, if it must be stopped. */
export interface StartStep<S> {
  /** What it starts. */
  readonly name: string;
  // biome-ignore lint/suspicious/noConfusingVoidType: a part with nothing to stop returns nothing, as an async function without a return does
  start(state: S): Promise<Stop | void>;
}

/**
 * Runs the steps in their order, which is the start order; the stop undoes
 * them in the reverse order, each once, and goes on past a step that fails to
 * stop. So a step listed after another is stopped before it: what invokes
 * functions stops before the host that runs them. A step that fails to start
 * stops what started before it, says which step failed, and throws its
 * error as it is.
 */
export async function startInOrder<S>(steps: readonly StartStep<S>[], state: S, log: (message: string) => void = () => undefined): Promise<Stop> {
  const stops: Stop[] = [];
  const stop = async () => {
    for (const undo of stops.splice(0).reverse()) await undo().catch(() => undefined);
  };
  for (const step of steps) {
    try {
      const undo = await step.start(state);
      if (undo) stops.push(undo);
    } catch (error) {
      log(`could not start ${step.name}; stopping what started`);
      await stop();
      throw error;
    }
  }
  return stop;
}
