/** No log line is longer than this (CloudWatch Logs splits events over 256 KB). */
export const MAX_LOG_LINE_BYTES = 200 * 1024;
/** How much of a line that is too long is kept, for a clue. */
const HEAD_CHARS = 4_000;

/**
 * The renewer Logger's `jsonReplacerFn` (telemetry.ts), so every line it writes passes here: at
 * the root of a line (key ''), a line whose JSON is over MAX_LOG_LINE_BYTES is replaced by a short
 * warning with its size and first characters, so a line is never split into unparseable pieces.
 * What the handler logs is bounded by design (summaries, not reports); this is the guarantee.
 */
export function capLogLine(key: string, value: unknown): unknown {
  if (key !== '' || typeof value !== 'object' || value === null) return value;
  let line: string;
  try {
    line = JSON.stringify(value);
  } catch {
    return value; // Powertools' own replacer handles what plain JSON cannot (BigInt, cycles)
  }
  const bytes = Buffer.byteLength(line);
  if (bytes <= MAX_LOG_LINE_BYTES) return value;
  const { timestamp, service } = value as Record<string, unknown>;
  return {
    level: 'WARN',
    message: 'log line too long; cut',
    timestamp,
    service,
    bytes,
    limit: MAX_LOG_LINE_BYTES,
    head: line.slice(0, HEAD_CHARS),
  };
}
