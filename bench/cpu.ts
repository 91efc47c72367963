/** CPU time per process, for attributing an operation's cost (Linux /proc; elsewhere nothing is attributed). */
import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc reports CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

/** User plus system CPU ms a process has used so far, or undefined when it cannot be read. */
function processCpuMs(pid: number): number | undefined {
  try {
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are fields 14 and 15.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** Cumulative CPU ms by group name: this process under `self`, the others under their names (summed when they share one). */
export function cpuSnapshot(self: string, processes: ReadonlyArray<{ pid: number; name: string }>): Map<string, number> {
  const usage = process.cpuUsage();
  const totals = new Map<string, number>([[self, (usage.user + usage.system) / 1000]]);
  for (const { pid, name } of processes) {
    const ms = processCpuMs(pid);
    if (ms !== undefined) totals.set(name, (totals.get(name) ?? 0) + ms);
  }
  return totals;
}

/** What each group used between two snapshots (groups that appeared in between count from zero). */
export function cpuBetween(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Map<string, number> {
  return new Map([...after].map(([name, ms]) => [name, ms - (before.get(name) ?? 0)]));
}
