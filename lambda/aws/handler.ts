import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { CombinedCertificateSource } from '../adapters/combined-source.js';
import { makeS3Client, S3CertificateSource, S3StapleStore } from '../adapters/s3.js';
import { s3StateBlob, StateStore } from '../adapters/state-store.js';
import { SecretsManagerCertificateSource } from '../adapters/secrets-manager.js';
import { responderPolicyOf } from '../adapters/http.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import { configFromEnv } from './config.js';
import { errorMessage } from '../core/errors.js';
import { buildStatus, entriesFromState } from '../core/status.js';
import { renderStatusPage } from '../core/status-page.js';
import { stapleKeyFor, type CertificateSource } from '../renew/ports.js';
import { cachedDownload, run, type RunReport, type Transport } from '../renew/run.js';
import { parseEvent } from './event.js';

export interface HandlerDeps {
  env?: NodeJS.ProcessEnv;
  s3?: S3Client;
  secrets?: SecretsManagerClient;
  transport?: Transport;
  clock?: () => Date;
  /** One structured log line (JSON). */
  log?: (line: string) => void;
}

/**
 * The part of the reserve (below) that saves the state and logs the report. No certificate starts
 * once less than `2 × HTTP timeout + DEADLINE_MARGIN_MS` is left: that covers a certificate in
 * flight waiting on one responder's GET and its POST retry. It is not a bound: one that must also
 * download its issuer, try a second responder URL or wait for a per-host slot can outlast it, and
 * then Lambda ends the invocation before the state is saved (staples already written stay; the next
 * run redoes the rest).
 */
const DEADLINE_MARGIN_MS = 5_000;

/** At most this many "certificate failed" lines per run; the run report counts them all. */
const FAILURE_LINES = 50;

/**
 * Builds the Lambda handler. The handler turns the event into a run request, runs the same core
 * as the CLI over S3 (and Secrets Manager), saves the state, logs the run report as JSON with
 * CloudWatch EMF metrics and returns it.
 */
export function createHandler(deps: HandlerDeps = {}) {
  // Clients live as long as the handler (the Lambda container), so connections are reused.
  let s3Client: S3Client | undefined;
  let secretsClient: SecretsManagerClient | undefined;
  return async function handler(
    event: unknown,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<RunReport> {
    // Straight to stdout: with the Lambda's JSON log format, console.log would wrap the line in
    // {"message": …} and CloudWatch would not see the EMF metrics' top-level _aws key.
    const log = deps.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
    const config = configFromEnv(deps.env ?? process.env);
    const request = parseEvent(event, config.certsPrefix, config.naming, config.bucket);
    const clock = deps.clock ?? (() => new Date());
    const s3 = (s3Client ??= deps.s3 ?? makeS3Client(deps.env ?? process.env));

    const sources: CertificateSource[] = [
      new S3CertificateSource(s3, config.bucket, config.certsPrefix, config.naming),
    ];
    if (config.secretsPrefix) {
      sources.push(
        new SecretsManagerCertificateSource(
          (secretsClient ??= deps.secrets ?? new SecretsManagerClient({})),
          config.secretsPrefix,
        ),
      );
    }
    const source = sources.length === 1 ? sources[0]! : new CombinedCertificateSource(sources);
    const stateStore = new StateStore(s3StateBlob(s3, config.bucket, config.stateKey), (e) =>
      log(JSON.stringify(e)),
    );
    const state = await stateStore.load();

    const keys = request.keys ? new Set(request.keys) : undefined;
    const inScope = (key: string) =>
      (keys ? keys.has(key) : true) && (request.prefix ? key.startsWith(request.prefix) : true);
    const reserve = 2 * config.http.timeoutMs + DEADLINE_MARGIN_MS;
    const report = await run(
      {
        source,
        store: new S3StapleStore(s3, config.bucket, config.staplesPrefix),
        transport: deps.transport ?? httpTransport(config.http),
        downloadIssuer: cachedDownload(httpIssuerDownload(config.http)),
        clock,
        state,
        trustState: true,
      },
      {
        force: request.mode === 'force' || request.mode === 's3-event',
        only: keys || request.prefix ? inScope : undefined,
        dryRun: request.dryRun,
        onRevoked: config.onRevoked,
        hash: config.hash,
        policy: config.policy,
        naming: config.naming,
        concurrency: config.concurrency,
        perHostConcurrency: config.perHostConcurrency,
        responderPolicy: responderPolicyOf(config.http),
        shouldStop: context ? () => context.getRemainingTimeInMillis() < reserve : undefined,
      },
    );
    if (request.mode === 'force' && request.keys) {
      // A forced key that names no certificate is a mistake worth a row, not silence.
      const seen = new Set([...report.results.map((r) => r.key), ...report.notReached]);
      for (const key of request.keys.filter((k) => !seen.has(k))) {
        report.results.push({
          key,
          staple: '',
          action: 'failed',
          stage: 'source',
          reason: `source ${config.certsPrefix}${key}: no such certificate`,
        });
        report.counts.failed++;
      }
    }
    const changed = !request.dryRun && (await stateStore.save(state, clock()));
    if (changed && config.statusPageKey) {
      // The page is a view: failing to write it is logged, never a failed run.
      const status = buildStatus(
        entriesFromState(state, (key) => stapleKeyFor(key, config.naming)),
        clock(),
      );
      await s3
        .send(
          new PutObjectCommand({
            Bucket: config.bucket,
            Key: config.statusPageKey,
            Body: Buffer.from(renderStatusPage(status, `ocsp-renewer status: s3://${config.bucket}`)),
            ContentType: 'text/html; charset=utf-8',
            CacheControl: 'no-cache',
          }),
        )
        .catch((err: unknown) => {
          log(
            JSON.stringify({
              level: 'warn',
              msg: 'cannot write the status page',
              key: config.statusPageKey,
              error: errorMessage(err),
            }),
          );
        });
    }
    log(JSON.stringify(logLine(report, request.mode)));
    // One line per failing certificate (the dashboard's "last failures" query), a bounded number.
    for (const r of report.results.filter((x) => x.action === 'failed').slice(0, FAILURE_LINES)) {
      log(
        JSON.stringify({
          level: 'warn',
          msg: 'certificate failed',
          certificate: r.key,
          stage: r.stage,
          reason: r.reason,
        }),
      );
    }
    log(JSON.stringify(emfMetrics(report, clock(), (deps.env ?? process.env).METRICS_SERVICE)));
    return report;
  };
}

export const handler = createHandler();

function logLine(report: RunReport, mode: string) {
  return {
    level: report.counts.failed > 0 || report.revoked > 0 ? 'warn' : 'info',
    msg: 'run report',
    mode,
    counts: report.counts,
    revoked: report.revoked,
    leastValidityHours: report.leastValidityHours,
    notReached: report.notReached.length,
    // Quiet rows (fresh, no OCSP URL) are counted, not listed, to keep the log readable.
    results: report.results.filter(
      (r) => r.action !== 'fresh' && r.reason !== 'no OCSP URL in the certificate',
    ),
  };
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
