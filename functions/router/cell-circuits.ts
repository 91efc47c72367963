/**
 * How long a router instance refuses a cell's requests itself after the
 * cell's function was throttled: long enough that a flood does not pay an
 * Invoke for each refusal, short enough that a cell with room again is
 * tried within a retry's wait.
 */
export const CELL_BUSY_MS = 500;

/**
 * Per-cell circuits of one router instance: open for `busyMs` after a
 * throttle, during which the cell's requests are refused without an Invoke;
 * then closed, and the next throttle opens it again. Other cells' requests
 * never look at it.
 */
export class CellCircuits {
  private readonly busyUntil = new Map<string, number>();

  constructor(
    private readonly busyMs = CELL_BUSY_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the cell's requests are refused now; its circuit closes by itself once the time is up. */
  isOpen(cellId: string): boolean {
    const until = this.busyUntil.get(cellId);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.busyUntil.delete(cellId);
    return false;
  }

  /** The cell throttled a request. */
  trip(cellId: string): void {
    this.busyUntil.set(cellId, this.now() + this.busyMs);
  }
}
