import { ACTIONS, type Action, type ReportRow, type RunReport } from './ports.js';

/** The run report: its rows, with the counts and figures made from them in one pass. */
export function reportOf(
  startedAt: Date,
  finishedAt: Date,
  dryRun: boolean,
  results: ReportRow[],
  notReached: string[],
): RunReport {
  const counts = Object.fromEntries(ACTIONS.map((a) => [a, 0])) as Record<Action, number>;
  // One pass, no array per measure (and no Math.min(...all), which overflows the stack at ~10^5).
  let revoked = 0;
  let leastNextUpdate = Infinity;
  for (const r of results) {
    counts[r.action]++;
    if (r.certStatus === 'revoked') revoked++;
    if (r.nextUpdate && r.action !== 'skipped')
      leastNextUpdate = Math.min(leastNextUpdate, Date.parse(r.nextUpdate));
  }
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    dryRun,
    counts,
    revoked,
    leastValidityHours:
      leastNextUpdate === Infinity ? undefined : (leastNextUpdate - finishedAt.getTime()) / 3_600_000,
    results,
    notReached,
  };
}

/**
 * A row as the report carries it: `key`, then the same key as `name` (its old spelling), then the
 * rest. Made as each certificate finishes (not in one copy of all N rows at the end).
 */
export function withOldName({ key, ...rest }: ReportRow): ReportRow {
  return { key, name: key, ...rest };
}
