import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { CombinedCertificateSource } from '../adapters/combined-source.js';
import { makeS3Client, s3StateBlob, S3CertificateSource, S3StapleStore } from '../adapters/s3.js';
import { PeriodicStateSave, StateStore } from '../adapters/state-store.js';
import { SecretsManagerCertificateSource } from '../adapters/secrets-manager.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import { configFromEnv } from './config.js';
import { errorMessage } from '../core/errors.js';
import { buildStatus, entriesFromState } from '../core/status.js';
import { renderStatusPage } from '../report/status-page.js';
import { stapleKeyFor, type CertificateSource, type Transport } from '../renew/ports.js';
import { cachedDownload, run } from '../renew/run.js';
import { parseEvent } from './event.js';
import { writeLogLine } from './log-line.js';
import { publishRun } from './run-output.js';
import { runOptionsFrom, timeLeftOf } from './run-options.js';
import type { RunSummary } from './run-summary.js';

export interface HandlerDeps {
  env?: NodeJS.ProcessEnv;
  s3?: S3Client;
  secrets?: SecretsManagerClient;
  transport?: Transport;
  clock?: () => Date;
  /** Where log lines go (JSON, one per call); every line passes writeLogLine's size cap first. */
  log?: (line: string) => void;
}

/**
 * Builds the Lambda handler. The handler turns the event into a run request, runs the same core
 * as the CLI over S3 (and Secrets Manager), saves the state as certificates are decided, writes
 * the full run report to `reports/runs/…json` in the bucket, and logs and returns its summary,
 * with CloudWatch EMF metrics.
 */
export function createHandler(deps: HandlerDeps = {}) {
  // Clients live as long as the handler (the Lambda container), so connections are reused.
  let s3Client: S3Client | undefined;
  let secretsClient: SecretsManagerClient | undefined;
  return async function handler(
    event: unknown,
    context?: Pick<Context, 'getRemainingTimeInMillis'> & Partial<Pick<Context, 'awsRequestId'>>,
  ): Promise<RunSummary> {
    // Straight to stdout: with the Lambda's JSON log format, console.log would wrap the line in
    // {"message": …} and CloudWatch would not see the EMF metrics' top-level _aws key.
    const sink = deps.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
    const log = (line: string) => writeLogLine(sink, line);
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
    // A dry run writes no state; the others save it as they go, so a killed run loses nothing.
    const saver = request.dryRun
      ? undefined
      : new PeriodicStateSave(stateStore, state, clock, config.stateSaveMs, (e) => log(JSON.stringify(e)));

    const keys = request.keys ? new Set(request.keys) : undefined;
    const inScope = (key: string) =>
      (keys ? keys.has(key) : true) && (request.prefix ? key.startsWith(request.prefix) : true);
    const timeLeft = timeLeftOf(context);
    const report = await run(
      {
        source,
        store: new S3StapleStore(s3, config.bucket, config.staplesPrefix),
        transport: deps.transport ?? httpTransport(config.http),
        downloadIssuer: cachedDownload(httpIssuerDownload(config.http, { timeLeft })),
        clock,
        state,
        stateSink: saver,
        trustState: true,
      },
      {
        ...runOptionsFrom(config, timeLeft),
        force: request.mode === 'force' || request.mode === 's3-event',
        only: keys || request.prefix ? inScope : undefined,
        dryRun: request.dryRun,
      },
    );
    if (request.mode === 'force' && request.keys) {
      // A forced key that names no certificate is a mistake worth a row, not silence.
      const seen = new Set([...report.results.map((r) => r.key), ...report.notReached]);
      for (const key of request.keys.filter((k) => !seen.has(k))) {
        report.results.push({
          key,
          name: key,
          staple: '',
          action: 'failed',
          stage: 'source',
          reason: `source ${config.certsPrefix}${key}: no such certificate`,
        });
        report.counts.failed++;
      }
    }
    const changed = (await saver?.flush()) === true;
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
    // A run with nothing in scope (an event for a key that is no certificate) leaves no object.
    const summary = await publishRun(report, request.mode, {
      s3,
      bucket: config.bucket,
      reportsPrefix: config.reportsPrefix,
      id: context?.awsRequestId ?? randomUUID(),
      service: (deps.env ?? process.env).METRICS_SERVICE,
      log,
      now: clock,
    });
    return summary;
  };
}

export const handler = createHandler();

export { emfMetrics, failingWithoutStaple } from './run-output.js';
