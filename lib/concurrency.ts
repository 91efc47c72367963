/** The reserved concurrency of the router and of each cell API. */
export interface ConcurrencyPlan {
  readonly router: number;
  readonly cells: Readonly<Record<string, number>>;
}

export interface ConcurrencyInput {
  readonly cells: readonly string[];
  readonly cellWeights: Readonly<Record<string, number>>;
  readonly accountConcurrency: number;
  readonly unreservedConcurrency: number;
  /** @default half of accountConcurrency − unreservedConcurrency */
  readonly routerConcurrency?: number;
  /** One number for every cell, or per cell. @default the other half, split by weight */
  readonly cellConcurrency?: number | Readonly<Record<string, number>>;
}

/**
 * Reserved concurrency from config, or a plan of it that the account can
 * hold: each cell is bounded by its own reservation, so one tenant's flood
 * throttles its cell and no other; the router reserves its own, so cells
 * cannot starve the front door. The router holds an instance for as long as
 * the cell it invokes, so by default it reserves as much as all cells
 * together. A plan whose total leaves less than `unreservedConcurrency` for
 * the rest of the account is refused: Lambda would refuse it at deploy, one
 * stack at a time.
 */
export function planConcurrency(input: ConcurrencyInput): { plan: ConcurrencyPlan; issues: [] } | { plan?: undefined; issues: string[] } {
  const issues: string[] = [];
  const reservable = input.accountConcurrency - input.unreservedConcurrency;
  const router = input.routerConcurrency ?? Math.floor(reservable / 2);
  const cellPool = reservable - router;
  const totalWeight = input.cells.reduce((sum, cellId) => sum + (input.cellWeights[cellId] ?? 1), 0);
  const given = input.cellConcurrency;
  if (typeof given === 'object') {
    for (const cellId of Object.keys(given)) {
      if (!input.cells.includes(cellId)) issues.push(`cellConcurrency.${cellId}: is not one of the cells (${input.cells.join(', ')})`);
    }
  }
  const cells = Object.fromEntries(
    input.cells.map((cellId) => {
      const own = typeof given === 'number' ? given : given?.[cellId];
      return [cellId, own ?? Math.max(1, Math.floor((cellPool * (input.cellWeights[cellId] ?? 1)) / totalWeight))];
    }),
  );
  const total = router + Object.values(cells).reduce((sum, n) => sum + n, 0);
  if (total > reservable) {
    issues.push(
      `reserved concurrency: the router's ${router} and the cells' ${total - router} make ${total}, over the ${reservable} the account can reserve ` +
        `(accountConcurrency ${input.accountConcurrency} less unreservedConcurrency ${input.unreservedConcurrency}): ` +
        'lower routerConcurrency or cellConcurrency, or raise accountConcurrency once Service Quotas has raised the limit',
    );
  }
  return issues.length ? { issues } : { plan: { router, cells }, issues: [] };
}
