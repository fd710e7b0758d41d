/**
 * The one-line progress of a long run, for a terminal: `renew 1200/10000 · 3 failed · 85/s · ETA 1m 43s`.
 * Pure: the caller keeps the counts and the clock.
 */
interface ProgressCounts {
  done: number;
  total: number;
  failed: number;
  /** Since the run started. */
  elapsedMs: number;
}

export function formatProgress(p: ProgressCounts): string {
  const seconds = p.elapsedMs / 1000;
  const rate = seconds > 0 ? p.done / seconds : 0;
  const left = p.total - p.done;
  const eta = rate > 0 ? formatSeconds(left / rate) : '?';
  const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100;
  const rateText = rate >= 10 ? rate.toFixed(0) : rate.toFixed(1);
  return `renew ${p.done}/${p.total} (${pct}%) · ${p.failed} failed · ${rateText}/s · ETA ${left === 0 ? '0s' : eta}`;
}

/** `1h 02m`, `1m 43s`, `7s`. */
export function formatSeconds(s: number): string {
  const total = Math.ceil(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}
