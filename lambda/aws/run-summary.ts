import type { S3Client } from '@aws-sdk/client-s3';
import { getObject, parseS3Object } from '../adapters/s3.js';
import type { Stage } from '../core/errors.js';
import { ACTIONS, type Action, type ReportRow, type RunReport } from '../renew/ports.js';

/** The failures a summary lists (a run's and an upload batch's); the run report holds them all. */
export const SUMMARY_FAILURES = 20;

/** The first SUMMARY_FAILURES failed rows, in report order. */
export function firstFailures(results: readonly ReportRow[]): ReportRow[] {
  const failed: ReportRow[] = [];
  for (const row of results) {
    if (failed.length === SUMMARY_FAILURES) break;
    if (row.action === 'failed') failed.push(row);
  }
  return failed;
}
/** A listed failure's reason is cut to this many characters (a reason names every URL tried). */
const REASON_CHARS = 1_000;

/**
 * What the handler returns and logs instead of the run report: counts and the first failures,
 * and where the full report is. Its size does not grow with the number of certificates, so it
 * fits a log line (CloudWatch splits events over 256 KB) and a synchronous invoke's response.
 */
export interface RunSummary {
  mode: string;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  counts: Record<Action, number>;
  revoked: number;
  leastValidityHours: number | undefined;
  /** How many certificates the deadline left for the next run (their keys are in the report). */
  notReached: number;
  /** The first failing certificates, in report order. */
  failures: { key: string; stage: Stage | undefined; reason: string }[];
  /**
   * The full run report (every row), `s3://bucket/key`; null when there is none (a run with
   * nothing in scope writes none; one that could not be written is logged as a warning).
   */
  report: string | null;
  /** A due run: how many certificates were due (seeded ones included). */
  due?: number;
  /** The first due run over a table: certificates that got their first item. */
  seeded?: number;
  /** A due run: secrets scheduled for deletion whose staple and state item it retired. */
  retired?: string[];
  /** A run handed to the state machine: its manifest (if any), execution and result files. */
  manifest?: string;
  execution?: string;
  results?: string;
}

/**
 * `reports/runs/2026-11-30T19:06:00.000Z-1a2b3c4d.json`: sorted by start time in a listing, and
 * unique per invocation (the request id's first characters).
 */
export function runReportKey(reportsPrefix: string, startedAt: string, id: string): string {
  return `${reportsPrefix}runs/${startedAt}-${shortId(id)}.json`;
}

/** An invocation id's first 8 letters and digits: the suffix of its report, manifest, execution. */
export function shortId(id: string): string {
  return id.replace(/[^A-Za-z0-9]/g, '').slice(0, 8);
}

export function summarise(report: RunReport, mode: string, location: string | null): RunSummary {
  return {
    mode,
    dryRun: report.dryRun,
    startedAt: report.startedAt,
    finishedAt: report.finishedAt,
    counts: report.counts,
    revoked: report.revoked,
    leastValidityHours: report.leastValidityHours,
    notReached: report.notReached.length,
    failures: firstFailures(report.results).map((r) => ({
      key: r.key,
      stage: r.stage,
      reason: r.reason.length > REASON_CHARS ? `${r.reason.slice(0, REASON_CHARS)}…` : r.reason,
    })),
    report: location,
  };
}

/** Reads the run report a summary names (`s3://bucket/key`), for tools and tests. */
export async function readRunReport(s3: S3Client, location: string): Promise<RunReport> {
  const at = parseS3Object(location);
  if (!at) throw new Error(`not an s3:// location: ${location}`);
  const object = await getObject(s3, at.bucket, at.key);
  if (!object) throw new Error(`run report ${location} not found`);
  return JSON.parse(object.body.toString('utf8')) as RunReport;
}

/**
 * What an upload batch logs beside its run summary (`"message":"upload batch"`): counts, the first
 * failures, the keys not reached and the certificates retired, never every row.
 */
export interface BatchSummary {
  counts: RunReport['counts'];
  revoked: number;
  /** The first SUMMARY_FAILURES failures, by certificate `key`; `counts.failed` has them all. */
  failures: { key: string; stage?: string; reason: string }[];
  notReached: string[];
  /** Certificates whose removal retired their staple and state. */
  retired: string[];
}

export function batchSummary(report: RunReport | undefined, retired: string[]): BatchSummary {
  const counts = report?.counts ?? (Object.fromEntries(ACTIONS.map((a) => [a, 0])) as RunReport['counts']);
  return {
    counts,
    revoked: report?.revoked ?? 0,
    failures: firstFailures(report?.results ?? []).map((r) => ({
      key: r.key,
      ...(r.stage ? { stage: r.stage } : {}),
      reason: r.reason,
    })),
    notReached: report?.notReached ?? [],
    retired,
  };
}

export function mergeBatchSummaries(summaries: BatchSummary[]): BatchSummary {
  const out = batchSummary(undefined, []);
  for (const s of summaries) {
    for (const [action, n] of Object.entries(s.counts)) out.counts[action as keyof typeof out.counts] += n;
    out.revoked += s.revoked;
    out.failures.push(...s.failures);
    out.notReached.push(...s.notReached);
    out.retired.push(...s.retired);
  }
  out.failures.splice(SUMMARY_FAILURES);
  return out;
}
