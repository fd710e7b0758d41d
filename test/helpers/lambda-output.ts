/**
 * What the Lambda handler writes. Powertools Logger and Metrics write to process.stdout (info
 * lines, the EMF documents) and process.stderr (warnings) through Console instances of their own,
 * as Lambda reads them; there is no sink to inject, so a test reads the streams themselves.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { renewerMetrics } from '../../lambda/aws/telemetry.js';

export interface CapturedOutput {
  /** Every line written to stdout or stderr since captureOutput(), in order. */
  readonly lines: string[];
  /** The lines parsed as JSON (Powertools writes one JSON document per line). */
  records(): Record<string, unknown>[];
  /** Gives the streams back. */
  restore(): void;
}

/** The captures under way; while there is one, stdout and stderr write to them instead. */
const active = new Set<string[]>();
let originals: { stream: NodeJS.WriteStream; write: NodeJS.WriteStream['write'] }[] | undefined;

/**
 * Takes what is written to stdout and stderr (nothing reaches the terminal) until restore().
 * Captures that overlap (handlers running at once) each get every line written meanwhile.
 */
export function captureOutput(): CapturedOutput {
  const lines: string[] = [];
  active.add(lines);
  if (!originals) {
    originals = [process.stdout, process.stderr].map((stream) => ({ stream, write: stream.write }));
    for (const { stream } of originals) {
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        const written = String(chunk).split('\n').filter(Boolean);
        for (const capture of active) capture.push(...written);
        (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
        return true;
      }) as typeof stream.write;
    }
  }
  return {
    lines,
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    restore() {
      active.delete(lines);
      if (active.size > 0 || !originals) return;
      for (const { stream, write } of originals) stream.write = write;
      originals = undefined;
    },
  };
}

/** Runs `fn` with the output captured; returns its result and the lines it wrote. */
export async function capturing<T>(fn: () => Promise<T>): Promise<{ result: T; output: CapturedOutput }> {
  const output = captureOutput();
  try {
    return { result: await fn(), output };
  } finally {
    output.restore();
  }
}

/** The handler, each call's output captured and handed to `sink` line by line (as it was written). */
export function recorded<H extends (...args: never[]) => Promise<unknown>>(
  handler: H,
  sink: (line: string) => void,
): H {
  return (async (...args: Parameters<H>) => {
    const { result, output } = await capturing(() => handler(...args));
    output.lines.forEach((line) => sink(line));
    return result;
  }) as H;
}

/**
 * A Logger and Metrics that write nothing, for handlers whose output a test does not read: the
 * Logger at level SILENT, the Metrics built with POWERTOOLS_METRICS_DISABLED (Powertools' own
 * switch, read when an instance is built).
 */
export function silentTelemetry(): { logger: Logger; metrics: Metrics } {
  const logger = new Logger({ logLevel: 'SILENT' });
  const before = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  try {
    return { logger, metrics: renewerMetrics(logger) };
  } finally {
    if (before === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
    else process.env.POWERTOOLS_METRICS_DISABLED = before;
  }
}
