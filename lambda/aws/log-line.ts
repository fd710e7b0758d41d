/** No log line is longer than this (CloudWatch Logs splits events over 256 KB). */
export const MAX_LOG_LINE_BYTES = 200 * 1024;
/** How much of a line that is too long is kept, for a clue. */
const HEAD_CHARS = 4_000;

/**
 * The one function every handler log line goes through: it writes `line` to `sink`, or, when the
 * line is over MAX_LOG_LINE_BYTES, a short JSON warning with its size and first characters, so a
 * line is never split into unparseable pieces.
 */
export function writeLogLine(sink: (line: string) => void, line: string): void {
  const bytes = Buffer.byteLength(line);
  if (bytes <= MAX_LOG_LINE_BYTES) {
    sink(line);
    return;
  }
  sink(
    JSON.stringify({
      level: 'warn',
      msg: 'log line too long; cut',
      bytes,
      limit: MAX_LOG_LINE_BYTES,
      head: line.slice(0, HEAD_CHARS),
    }),
  );
}
