import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { CombinedCertificateSource } from '../adapters/combined-source.js';
import { makeS3Client, S3CertificateSource, S3StapleStore } from '../adapters/s3.js';
import { s3StateBlob, StateStore } from '../adapters/state-store.js';
import { SecretsManagerCertificateSource } from '../adapters/secrets-manager.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import { configFromEnv } from './config.js';
import type { CertificateSource } from '../renew/ports.js';
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
 * Time kept before the Lambda deadline when no new certificate may start: certificates in flight
 * may still wait for a GET and its POST retry (two HTTP timeouts), then the state is saved and the
 * report logged (5 s).
 */
const DEADLINE_MARGIN_MS = 5_000;

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
    if (!request.dryRun) await stateStore.save(state, clock());
    log(JSON.stringify(logLine(report, request.mode)));
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

/** CloudWatch Embedded Metric Format: the log line is also the metric. */
export function emfMetrics(report: RunReport, now: Date, service = 'ocsp-renewer') {
  const metrics: Record<string, number> = {
    Renewed: report.counts.renewed,
    Failed: report.counts.failed,
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
