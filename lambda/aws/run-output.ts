import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { errorMessage } from '../core/errors.js';
import { jsonPieces } from '../report/json-pieces.js';
import { runReportKey, summarise, type RunSummary } from './run-summary.js';
import { ACTIONS, type RunReport } from '../renew/ports.js';

/** At most this many "certificate failed" lines per run; the run report counts them all. */
const FAILURE_LINES = 50;

/** Where a finished run goes: the bucket (run report object) and the log (summary, failures, EMF). */
export interface RunOutput {
  s3: S3Client;
  bucket: string;
  reportsPrefix: string;
  /** The invocation's id (its first characters name the report object). */
  id: string;
  /** EMF `Service` dimension (METRICS_SERVICE). */
  service: string | undefined;
  log: (line: string) => void;
  now: () => Date;
}

/**
 * What every run ends with, whatever its mode: the full run report
 * object under `reports/runs/` (none when nothing was in scope), the compact summary as the
 * `"msg":"run report"` line (with `extra` fields), one "certificate failed" line per failure (a
 * bounded number), and the EMF metrics line the alarms read. Returns the summary (with `extra`).
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
        out.log,
      );
  // The extra fields (a due run's counts, an execution…) are part of the summary: what is
  // logged is what is returned.
  const summary: RunSummary = { ...summarise(report, mode, location), ...extra };
  out.log(JSON.stringify(logLine(summary)));
  // One line per failing certificate (the dashboard's "last failures" query), a bounded number.
  for (const r of report.results.filter((x) => x.action === 'failed').slice(0, FAILURE_LINES)) {
    out.log(
      JSON.stringify({
        level: 'warn',
        msg: 'certificate failed',
        certificate: r.key,
        stage: r.stage,
        reason: r.reason,
      }),
    );
  }
  out.log(JSON.stringify(emfMetrics(report, out.now(), out.service)));
  return summary;
}

/** The summary as its log line: `"msg":"run report"`, a warning when something failed or is revoked. */
function logLine(summary: RunSummary) {
  return {
    level: summary.counts.failed > 0 || summary.revoked > 0 ? 'warn' : 'info',
    msg: 'run report',
    ...summary,
  };
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
  log: (line: string) => void,
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
    log(
      JSON.stringify({
        level: 'warn',
        msg: 'cannot write the run report',
        key: `s3://${bucket}/${key}`,
        error: errorMessage(err),
      }),
    );
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

/**
 * CloudWatch Embedded Metric Format: the log line is also the metric. `Renewed` is the heartbeat
 * (the NoRun alarm counts its samples), so a dry run, which renews nothing, does not emit it.
 * `FailingWithoutStaple` counts failing certificates that have no valid staple to fall back on (a
 * first staple never obtained, or one that lapsed): they give no LeastValidityHours sample.
 */
export function emfMetrics(report: RunReport, now: Date, service = 'ocsp-renewer') {
  const metrics: Record<string, number> = {
    ...(report.dryRun ? {} : { Renewed: report.counts.renewed }),
    Failed: report.counts.failed,
    FailingWithoutStaple: failingWithoutStaple(report, now),
    Skipped: report.counts.skipped,
    Revoked: report.revoked,
    NotReached: report.notReached.length,
  };
  if (report.leastValidityHours !== undefined) {
    metrics.LeastValidityHours = Math.round(report.leastValidityHours * 100) / 100;
  }
  return {
    _aws: {
      Timestamp: now.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: 'OcspRenewer',
          Dimensions: [['Service']],
          Metrics: Object.keys(metrics).map((Name) => ({
            Name,
            Unit: Name === 'LeastValidityHours' ? 'None' : 'Count',
          })),
        },
      ],
    },
    Service: service,
    ...metrics,
  };
}

/** Failing certificates with no staple valid at `now` (a forced key naming no certificate aside). */
export function failingWithoutStaple(report: RunReport, now: Date): number {
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
