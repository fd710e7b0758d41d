import { formatProgress } from '../report/progress.js';
import type { ReportRow } from '../renew/ports.js';

/** Redraws at most this often: a fast run over 10^5 certificates must not flood the terminal. */
const REDRAW_MS = 100;

interface ProgressLine {
  onResult: (result: ReportRow, done: number, total: number) => void;
  /** Erases the line, so the report that follows starts on a clean line. */
  finish: () => void;
}

/**
 * One updating progress line on a terminal (`\r` + erase-line). Undefined when the stream is not
 * a TTY (cron, pipes, files): those get no progress at all.
 */
export function terminalProgress(
  stream: Pick<NodeJS.WriteStream, 'isTTY' | 'write'>,
  clock: () => number = Date.now,
): ProgressLine | undefined {
  if (!stream.isTTY) return undefined;
  const started = clock();
  let failed = 0;
  let drawnAt = 0;
  let drawn = false;
  return {
    onResult(result, done, total) {
      if (result.action === 'failed') failed++;
      const t = clock();
      if (t - drawnAt < REDRAW_MS && done < total) return;
      drawnAt = t;
      drawn = true;
      stream.write(`\r\x1b[2K${formatProgress({ done, total, failed, elapsedMs: t - started })}`);
    },
    finish() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}
