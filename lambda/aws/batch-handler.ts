import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { randomUUID } from 'node:crypto';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DynamoStateStore } from '../adapters/dynamo-state.js';
import { makeS3Client, S3KeyedCertificateSource, S3StapleStore } from '../adapters/s3.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import {
  ISSUER_SIBLING_SUFFIX,
  isCertificateKey,
  stapleKeyFor,
  type CertificateObject,
} from '../renew/ports.js';
import { ACTIONS, cachedDownload, run, type RunReport, type RunState, type Transport } from '../renew/run.js';
import { configFromEnv, type LambdaConfig } from './config.js';
import { EventError } from './event.js';
import { inlineMaxKeys } from './due-run-limit.js';
import { writeLogLine } from './log-line.js';
import { mergeReports, publishRun, type RunOutput } from './run-output.js';
import { runOptionsFrom, timeLeftOf } from './run-options.js';

export interface BatchHandlerDeps {
  env?: NodeJS.ProcessEnv;
  s3?: S3Client;
  dynamodb?: DynamoDBClient;
  transport?: Transport;
  clock?: () => Date;
  log?: (line: string) => void;
  /** Starts the state machine over a due manifest (a due run over INLINE_MAX_KEYS). */
  sfn?: SFNClient;
}

/**
 * A Distributed Map child's event: certificate keys (with or without the certs prefix); or a
 * due run: the certificates whose next due time has come, read from the state table's index.
 */
export type BatchRequest =
  | {
      mode: 'batch';
      keys: string[];
      force: boolean;
      /** The keys' ETags as the listing gave them (the map passes them), by key. */
      etags: Map<string, string>;
      /**
       * Requests in flight per responder host for this batch (the map passes its share of the
       * per-host limit, so all children together stay within it); default PER_HOST_CONCURRENCY.
       */
      perHostConcurrency?: number;
    }
  | { mode: 'due' };

/** What a batch returns and logs: counts and the first failures, never every row. */
export interface BatchSummary {
  counts: RunReport['counts'];
  revoked: number;
  /** The first 20 failures; `counts.failed` has them all. */
  failures: { name: string; stage?: string; reason: string }[];
  notReached: string[];
  /** Certificates whose removal retired their staple and state. */
  retired: string[];
  /** In a due run: how many certificates the due index returned. */
  due?: number;
  /** The run report object (`s3://…`), null when none was written (nothing in scope). */
  report?: string | null;
  /** A due run over INLINE_MAX_KEYS: the manifest of due keys and the state machine execution. */
  manifest?: string;
  execution?: string;
}

const MAX_FAILURES_LISTED = 20;

/** An upload record whose certificates the run's deadline left: reported to SQS as a failure. */
export class NotReachedError extends Error {
  constructor(messageId: string, keys: string[]) {
    super(`message ${messageId}: the run's deadline came before ${keys.join(', ')}; SQS delivers it again`);
    this.name = 'NotReachedError';
  }
}

/**
 * The fleet worker (infra/fleet.ts): renews a given batch of certificate keys without listing the
 * whole prefix, with the per-certificate state in DynamoDB when STATE_TABLE is set.
 * - SQS (the upload queue): each record is one S3 notification. ObjectCreated renews that
 *   certificate (an issuer sibling renews the certificates it belongs to); ObjectRemoved retires
 *   it (staple deleted, state item removed) unless the certificate exists again. Records are
 *   handled one after another by Powertools' partial-response processor: a record that throws is
 *   reported in `batchItemFailures` and retried alone; a certificate that fails to renew is a row
 *   in the log, not a retry (the next scheduled run is due for it anyway).
 * - `{"mode":"batch","keys":[…],"force":bool}` (a Distributed Map child): renews those keys;
 *   optional `"etags":[…]`, one per key as the listing gave it, lets an unchanged state stay
 *   unwritten.
 * - `{"mode":"due"}` (the schedule, with `fleet`): the certificates the state table's due index
 *   returns, and only those: a quiet fleet costs one index query per shard. Up to INLINE_MAX_KEYS
 *   are renewed here; more go to the state machine as a manifest (see dueRun).
 * Every run ends as the renewer's do (run-output.ts): a run report object under `reports/runs/`,
 * the `"msg":"run report"` summary line and the EMF metrics the alarms read.
 */
export function createBatchHandler(deps: BatchHandlerDeps = {}) {
  let s3Client: S3Client | undefined;
  let dynamoClient: DynamoDBClient | undefined;
  let sfnClient: SFNClient | undefined;
  const processor = new BatchProcessor(EventType.SQS);

  return async function handler(
    event: unknown,
    context?: Pick<Context, 'getRemainingTimeInMillis'> & Partial<Pick<Context, 'awsRequestId'>>,
  ): Promise<BatchSummary | SQSBatchResponse> {
    const env = deps.env ?? process.env;
    const sink = deps.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
    const log = (line: string) => writeLogLine(sink, line);
    const config = configFromEnv(env);
    const s3 = (s3Client ??= deps.s3 ?? makeS3Client(env));
    const table = env.STATE_TABLE || undefined;
    const dynamodb = table ? (dynamoClient ??= deps.dynamodb ?? new DynamoDBClient({})) : undefined;
    const clock = deps.clock ?? (() => new Date());
    const staples = new S3StapleStore(s3, config.bucket, config.staplesPrefix);
    // The same deadline as the renewer's: requests cut at it, no certificate started too late.
    const timeLeft = timeLeftOf(context);
    const downloadIssuer = cachedDownload(httpIssuerDownload(config.http, { timeLeft }));

    const renew = async (
      objects: CertificateObject[],
      force: boolean,
      loaded?: { store: DynamoStateStore; state: RunState },
      perHostConcurrency = config.perHostConcurrency,
    ): Promise<RunReport> => {
      const stateStore = loaded?.store ?? (dynamodb && new DynamoStateStore(dynamodb, table!));
      const state =
        loaded?.state ?? (stateStore ? await stateStore.load(objects.map((o) => o.key)) : new Map());
      const report = await run(
        {
          source: new S3KeyedCertificateSource(s3, config.bucket, config.certsPrefix, objects, config.naming),
          store: staples,
          transport: deps.transport ?? httpTransport(config.http),
          downloadIssuer,
          clock,
          state,
          // Each certificate's item is written as it is decided, so a worker Lambda ends midway
          // loses nothing already decided; the save below then writes only what is left.
          stateSink: stateStore && {
            recorded: async (key, entry) => {
              await stateStore.write(key, entry);
            },
          },
        },
        { ...runOptionsFrom(config, timeLeft), force, perHostConcurrency },
      );
      await stateStore?.save(state);
      return report;
    };

    const output: RunOutput = {
      s3,
      bucket: config.bucket,
      reportsPrefix: config.reportsPrefix,
      id: context?.awsRequestId ?? randomUUID(),
      service: env.METRICS_SERVICE,
      log,
      now: clock,
    };

    if (isSqsEvent(event)) {
      const summaries: BatchSummary[] = [];
      const reports: RunReport[] = [];
      const renewAndKeep = async (objects: CertificateObject[], force: boolean) => {
        const report = await renew(objects, force);
        reports.push(report);
        return report;
      };
      const response = await processPartialResponse(
        event,
        async (record: SQSRecord) => {
          const summary = await handleUpload(record, config, s3, renewAndKeep, staples, dynamodb, table);
          summaries.push(summary);
          // Nothing was written for a key the deadline left, and the due index has no item for a
          // new certificate: the record fails, so SQS delivers it again (the keys renewed meanwhile
          // are fresh then, and cost one read each).
          if (summary.notReached.length > 0) throw new NotReachedError(record.messageId, summary.notReached);
        },
        processor,
        { context: context as Context | undefined, processInParallel: false, throwOnFullBatchFailure: false },
      );
      const summary = merge(summaries);
      log(
        JSON.stringify({
          level: logLevel(summary),
          msg: 'upload batch',
          records: event.Records.length,
          ...summary,
          batchItemFailures: response.batchItemFailures.length,
        }),
      );
      await publishRun(mergeReports(reports, clock()), 'upload', output, { records: event.Records.length });
      return response;
    }

    const request = parseBatchRequest(event, config.certsPrefix);
    if (request.mode === 'due') {
      if (!dynamodb) throw new EventError('{"mode":"due"} needs the state table (STATE_TABLE)');
      return dueRun(new DynamoStateStore(dynamodb, table!), env, config, output, renew, () => {
        return (sfnClient ??= deps.sfn ?? new SFNClient({}));
      });
    }
    const report = await renew(
      request.keys.map((key) => ({ key, tag: request.etags.get(key) })),
      request.force,
      undefined,
      request.perHostConcurrency,
    );
    const published = await publishRun(report, 'batch', output, { keys: request.keys.length });
    return { ...summarise(report, []), report: published.report };
  };
}

/**
 * A due run: the due index's keys, renewed here when they fit one invocation (INLINE_MAX_KEYS),
 * else written as a manifest (a JSON array of certificate object keys) under
 * `<reports>manifests/` and handed to the state machine (STATE_MACHINE_ARN), whose Distributed
 * Map reads it and batches the keys over workers. Without STATE_MACHINE_ARN every due key is
 * renewed here (the deadline leaves the rest for the next run).
 */
async function dueRun(
  store: DynamoStateStore,
  env: NodeJS.ProcessEnv,
  config: LambdaConfig,
  output: RunOutput,
  renew: (
    objects: CertificateObject[],
    force: boolean,
    loaded?: { store: DynamoStateStore; state: RunState },
  ) => Promise<RunReport>,
  sfnClient: () => SFNClient,
): Promise<BatchSummary> {
  const inlineMax = inlineMaxKeys(env);
  const machine = env.STATE_MACHINE_ARN || undefined;
  const now = output.now();
  const state = await store.loadDue(now);
  const objects = [...state].map(([key, entry]) => ({ key, tag: entry.certTag }));
  if (objects.length <= inlineMax || !machine) {
    const report = await renew(objects, false, { store, state });
    const published = await publishRun(report, 'due', output, { due: objects.length, inline: true });
    return { ...summarise(report, []), due: objects.length, report: published.report };
  }
  const manifest = `${config.reportsPrefix}manifests/${now.toISOString()}-${shortId(output.id)}.json`;
  await output.s3.send(
    new PutObjectCommand({
      Bucket: config.bucket,
      Key: manifest,
      Body: Buffer.from(JSON.stringify(objects.map((o) => config.certsPrefix + o.key))),
      ContentType: 'application/json',
    }),
  );
  const started = await sfnClient().send(
    new StartExecutionCommand({
      stateMachineArn: machine,
      name: `due-${now.toISOString().replace(/[^0-9A-Za-z]/g, '-')}-${shortId(output.id)}`,
      input: JSON.stringify({ manifest, force: false }),
    }),
  );
  // The map's workers report their own runs; this one reports the hand-off (and the heartbeat).
  await publishRun(mergeReports([], now), 'due', output, {
    due: objects.length,
    inline: false,
    manifest: `s3://${config.bucket}/${manifest}`,
    execution: started.executionArn,
  });
  return {
    ...summarise(undefined, []),
    due: objects.length,
    manifest: `s3://${config.bucket}/${manifest}`,
    execution: started.executionArn,
  };
}

function shortId(id: string): string {
  return id.replace(/[^A-Za-z0-9]/g, '').slice(0, 8);
}

export const handler = createBatchHandler();

/** `{"mode":"batch","keys":[…],"force":bool,"etags"?:[…]}` or `{"mode":"due"}`; else EventError. */
export function parseBatchRequest(event: unknown, certsPrefix: string): BatchRequest {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new EventError('event must be a JSON object');
  }
  const e = event as Record<string, unknown>;
  const unknown = Object.keys(e).filter(
    (k) => !['mode', 'keys', 'force', 'etags', 'perHostConcurrency'].includes(k),
  );
  if (unknown.length) throw new EventError(`unsupported event field(s): ${unknown.join(', ')}`);
  if (e.mode === 'due') {
    if (Object.keys(e).length > 1) throw new EventError('{"mode":"due"} takes no other field');
    return { mode: 'due' };
  }
  if (e.mode !== 'batch') throw new EventError(`unsupported mode ${JSON.stringify(e.mode)} (batch or due)`);
  if (!Array.isArray(e.keys) || !e.keys.every((k) => typeof k === 'string' && k)) {
    throw new EventError('keys must be an array of certificate keys');
  }
  if (e.force !== undefined && typeof e.force !== 'boolean') throw new EventError('force must be a boolean');
  const keys = (e.keys as string[]).map((k) => (k.startsWith(certsPrefix) ? k.slice(certsPrefix.length) : k));
  if (
    e.etags !== undefined &&
    !(Array.isArray(e.etags) && e.etags.length === keys.length && e.etags.every((t) => typeof t === 'string'))
  ) {
    throw new EventError('etags must be an array of strings, one per key');
  }
  const etags = new Map(((e.etags as string[] | undefined) ?? []).map((tag, i) => [keys[i]!, tag]));
  const perHost = e.perHostConcurrency;
  if (perHost !== undefined && !(Number.isInteger(perHost) && (perHost as number) >= 1)) {
    throw new EventError('perHostConcurrency must be a whole number ≥ 1');
  }
  return {
    mode: 'batch',
    keys: [...new Set(keys)],
    force: e.force === true,
    etags,
    ...(perHost !== undefined ? { perHostConcurrency: perHost as number } : {}),
  };
}

function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as { Records?: unknown } | null)?.Records;
  return (
    Array.isArray(records) &&
    records.length > 0 &&
    records.every((r) => (r as { eventSource?: string }).eventSource === 'aws:sqs')
  );
}

interface S3Notification {
  Records?: {
    eventName?: string;
    s3?: { bucket?: { name?: string }; object?: { key?: string; eTag?: string } };
  }[];
}

/** One queue message: one S3 notification (or S3's test event, which changes nothing). */
async function handleUpload(
  record: SQSRecord,
  config: LambdaConfig,
  s3: S3Client,
  renew: (objects: CertificateObject[], force: boolean) => Promise<RunReport>,
  staples: S3StapleStore,
  dynamodb: DynamoDBClient | undefined,
  table: string | undefined,
): Promise<BatchSummary> {
  let body: S3Notification;
  try {
    body = JSON.parse(record.body) as S3Notification;
  } catch {
    throw new EventError(`message ${record.messageId} is not JSON`);
  }
  const created = new Map<string, string | undefined>();
  const removed = new Set<string>();
  for (const r of body.Records ?? []) {
    if (r.s3?.bucket?.name && r.s3.bucket.name !== config.bucket) continue;
    const raw = r.s3?.object?.key;
    if (!raw) continue;
    const key = decodeURIComponent(raw.replace(/\+/g, ' '));
    if (!key.startsWith(config.certsPrefix)) continue;
    const rel = key.slice(config.certsPrefix.length);
    if (r.eventName?.startsWith('ObjectCreated:')) {
      if (isCertificateKey(rel, config.naming)) created.set(rel, r.s3?.object?.eTag);
      else if (rel.endsWith(ISSUER_SIBLING_SUFFIX)) {
        const base = rel.slice(0, -ISSUER_SIBLING_SUFFIX.length);
        for (const ext of config.naming.certExtensions) created.set(base + ext, undefined);
      }
    } else if (r.eventName?.startsWith('ObjectRemoved:') && isCertificateKey(rel, config.naming)) {
      removed.add(rel);
    }
  }
  const probe = new S3KeyedCertificateSource(s3, config.bucket, config.certsPrefix, [], config.naming);
  // An issuer sibling names certificates by every extension: keep the ones that exist.
  for (const [key, tag] of created) {
    if (tag === undefined && !(await probe.exists(key))) created.delete(key);
  }
  const retired: string[] = [];
  for (const key of removed) {
    if (created.has(key) || (await probe.exists(key))) continue; // uploaded again since
    await staples.delete(stapleKeyFor(key, config.naming));
    if (dynamodb) await new DynamoStateStore(dynamodb, table!).remove(key);
    retired.push(key);
  }
  const objects = [...created].map(([key, tag]) => ({ key, tag: tag && `"${tag}"` }));
  const report = objects.length > 0 ? await renew(objects, true) : undefined;
  return summarise(report, retired);
}

function summarise(report: RunReport | undefined, retired: string[]): BatchSummary {
  const counts = report?.counts ?? (Object.fromEntries(ACTIONS.map((a) => [a, 0])) as RunReport['counts']);
  return {
    counts,
    revoked: report?.revoked ?? 0,
    failures: (report?.results ?? [])
      .filter((r) => r.action === 'failed')
      .slice(0, MAX_FAILURES_LISTED)
      .map((r) => ({ name: r.key, ...(r.stage ? { stage: r.stage } : {}), reason: r.reason })),
    notReached: report?.notReached ?? [],
    retired,
  };
}

function merge(summaries: BatchSummary[]): BatchSummary {
  const out = summarise(undefined, []);
  for (const s of summaries) {
    for (const [action, n] of Object.entries(s.counts)) out.counts[action as keyof typeof out.counts] += n;
    out.revoked += s.revoked;
    out.failures.push(...s.failures);
    out.notReached.push(...s.notReached);
    out.retired.push(...s.retired);
  }
  out.failures.splice(MAX_FAILURES_LISTED);
  return out;
}

function logLevel(summary: BatchSummary): 'warn' | 'info' {
  return summary.counts.failed > 0 || summary.revoked > 0 || summary.notReached.length > 0 ? 'warn' : 'info';
}
