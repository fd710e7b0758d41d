import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { errorMessage } from '../core/errors.js';
import { jsonPieces } from '../report/json-pieces.js';
import { runReportKey, summarise, type RunSummary } from './run-summary.js';
import { ACTIONS, type RunReport } from '../renew/ports.js';
import { DEFAULT_SERVICE } from './telemetry.js';

/** At most this many "certificate failed" lines per run; the run report counts them all. */
const FAILURE_LINES = 50;

/** Where a finished run goes: the bucket (run report object), the log (summary, failures), the metrics. */
export interface RunOutput {
  s3: S3Client;
  bucket: string;
  reportsPrefix: string;
  /** The invocation's id (its first characters name the report object). */
  id: string;
  /** The metrics' `Service` dimension (METRICS_SERVICE). */
  service: string | undefined;
  logger: Logger;
  metrics: Metrics;
  now: () => Date;
}

/**
 * What every run ends with, whatever its mode: the full run report
 * object under `reports/runs/` (none when nothing was in scope), the compact summary as the
 * `"message":"run report"` line (with `extra` fields), one "certificate failed" line per failure (a
 * bounded number), and the metrics the alarms read (one EMF document). Returns the summary (with
 * `extra`).
 */
export async function publishRun(
  report: RunReport,
  mode: string,
  out: RunOutput,
  extra: Record<string, unknown> = {},
): Promise<RunSummary> {
  const empty = report.results.length === 0 && report.notReached.length === 0;
  const location = empty
    ? null
    : await writeRunReport(
        out.s3,
        out.bucket,
        runReportKey(out.reportsPrefix, report.startedAt, out.id),
        report,
        out.logger,
      );
  // The extra fields (a due run's counts, an execution…) are part of the summary: what is
  // logged is what is returned (but for a null, such as `report`, which Powertools leaves out).
  const summary: RunSummary = { ...summarise(report, mode, location), ...extra };
  // A warning when something failed or is revoked.
  const warn = summary.counts.failed > 0 || summary.revoked > 0;
  out.logger[warn ? 'warn' : 'info']('run report', { ...summary });
  // One line per failing certificate (the dashboard's "last failures" query), a bounded number.
  for (const r of report.results.filter((x) => x.action === 'failed').slice(0, FAILURE_LINES)) {
    out.logger.warn('certificate failed', { certificate: r.key, stage: r.stage, reason: r.reason });
  }
  publishMetrics(out.metrics, report, out.now(), out.service);
  return summary;
}

/**
 * Writes the full run report (every row, every key not reached) as JSON, dry runs included (the
 * only place a large dry run's "would renew" rows can be read). Returns its `s3://` location, or
 * null when it could not be written: that is logged and never fails the run.
 */
async function writeRunReport(
  s3: S3Client,
  bucket: string,
  key: string,
  report: RunReport,
  logger: Logger,
): Promise<string | null> {
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: Buffer.concat(runReportPieces(report)),
        ContentType: 'application/json',
      }),
    );
    return `s3://${bucket}/${key}`;
  } catch (err) {
    logger.warn('cannot write the run report', { key: `s3://${bucket}/${key}`, error: errorMessage(err) });
    return null;
  }
}

/**
 * The run report's JSON, exactly `JSON.stringify(report)`, in Buffers of about 64 KiB (outside the
 * JS heap; see jsonPieces): never one string of the whole report.
 */
export function runReportPieces(report: RunReport): Buffer[] {
  return Array.from(jsonPieces(report), (piece) => Buffer.from(piece));
}

/** One metric of a run: its name, its unit and its value. */
export interface RunMetric {
  name: string;
  unit: (typeof MetricUnit)[keyof typeof MetricUnit];
  value: number;
}

/**
 * A run's metrics, as the alarms read them. `Renewed` is the heartbeat (the NoRun alarm counts its
 * samples), so a dry run, which renews nothing, does not emit it. `FailingWithoutStaple` counts
 * failing certificates that have no valid staple to fall back on (a first staple never obtained,
 * or one that lapsed): they give no LeastValidityHours sample.
 */
export function runMetrics(report: RunReport, now: Date): RunMetric[] {
  const count = (name: string, value: number) => ({ name, unit: MetricUnit.Count, value });
  return [
    ...(report.dryRun ? [] : [count('Renewed', report.counts.renewed)]),
    count('Failed', report.counts.failed),
    count('FailingWithoutStaple', failingWithoutStaple(report, now)),
    count('Skipped', report.counts.skipped),
    count('Revoked', report.revoked),
    count('NotReached', report.notReached.length),
    ...(report.leastValidityHours === undefined
      ? []
      : [
          {
            name: 'LeastValidityHours',
            unit: MetricUnit.NoUnit,
            value: Math.round(report.leastValidityHours * 100) / 100,
          },
        ]),
  ];
}

/**
 * Writes a run's metrics through Powertools as one CloudWatch Embedded Metric Format document
 * (the log line is also the metric): namespace OcspRenewer, dimension set exactly [Service]
 * (`service`, default DEFAULT_SERVICE; renewerMetrics took Powertools' lowercase `service` default
 * dimension away), timestamped `now` — the run's clock, not the machine's. Synchronous from the
 * first call to the flush, so runs sharing the instance never mix their metrics.
 */
export function publishMetrics(metrics: Metrics, report: RunReport, now: Date, service?: string): void {
  const values = runMetrics(report, now);
  metrics.setTimestamp(now);
  metrics.addDimension('Service', service || DEFAULT_SERVICE);
  for (const m of values) metrics.addMetric(m.name, m.unit, m.value);
  metrics.publishStoredMetrics();
}

/** Failing certificates with no staple valid at `now` (a forced key naming no certificate aside). */
function failingWithoutStaple(report: RunReport, now: Date): number {
  return report.results.filter(
    (r) =>
      r.action === 'failed' &&
      r.staple !== '' &&
      (r.nextUpdate === undefined || Date.parse(r.nextUpdate) <= now.getTime()),
  ).length;
}

/** Several runs' reports as one (an upload batch renews record by record). */
export function mergeReports(reports: RunReport[], now: Date): RunReport {
  const first = reports[0];
  const counts = Object.fromEntries(ACTIONS.map((a) => [a, 0])) as RunReport['counts'];
  const out: RunReport = {
    startedAt: first?.startedAt ?? now.toISOString(),
    finishedAt: reports.at(-1)?.finishedAt ?? now.toISOString(),
    dryRun: false,
    counts,
    revoked: 0,
    leastValidityHours: undefined,
    results: [],
    notReached: [],
  };
  for (const r of reports) {
    for (const [action, n] of Object.entries(r.counts)) out.counts[action as keyof typeof counts] += n;
    out.revoked += r.revoked;
    out.results.push(...r.results);
    out.notReached.push(...r.notReached);
    if (r.leastValidityHours !== undefined) {
      out.leastValidityHours = Math.min(out.leastValidityHours ?? Infinity, r.leastValidityHours);
    }
  }
  return out;
}
