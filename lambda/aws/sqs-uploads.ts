import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { isCertificateKey, unsafeKeyReason, type RunReport } from '../renew/ports.js';
import { EventError, issuerSiblingOwners, notifiedKey } from './event.js';
import type { Invocation, LambdaContext } from './invocation.js';
import { mergeReports, publishRun } from './run-output.js';
import { batchSummary, mergeBatchSummaries, type BatchSummary } from './run-summary.js';

/** Built once per container, as Powertools' examples do; records are handled one at a time. */
const processor = new BatchProcessor(EventType.SQS);

/** An upload record whose certificates the run's deadline left: reported to SQS as a failure. */
export class NotReachedError extends Error {
  constructor(messageId: string, keys: string[]) {
    super(`message ${messageId}: the run's deadline came before ${keys.join(', ')}; SQS delivers it again`);
    this.name = 'NotReachedError';
  }
}

export function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as { Records?: unknown } | null)?.Records;
  return (
    Array.isArray(records) &&
    records.length > 0 &&
    records.every((r) => (r as { eventSource?: string }).eventSource === 'aws:sqs')
  );
}

/**
 * An upload queue batch (S3 → SQS → here): each record is one S3 notification. ObjectCreated
 * renews that certificate (an issuer sibling renews the certificates it belongs to); ObjectRemoved
 * retires it (staple deleted, state item removed) unless the certificate exists again. A record
 * that throws — S3 or DynamoDB unreachable, a message that is not JSON, a certificate the deadline
 * left — is reported in `batchItemFailures` and delivered again alone; a certificate that fails to
 * renew is a row in the run report, not a retry.
 */
export async function uploadBatch(
  event: SQSEvent,
  inv: Invocation,
  context: LambdaContext | undefined,
): Promise<SQSBatchResponse> {
  const summaries: BatchSummary[] = [];
  const reports: RunReport[] = [];
  const recordHandler = async (record: SQSRecord) => {
    const summary = await handleUpload(record, inv, reports);
    summaries.push(summary);
    // Nothing was written for a key the deadline left, and the due index has no item for a new
    // certificate: the record fails, so SQS delivers it again (the keys renewed meanwhile are
    // fresh then, and cost one read each).
    if (summary.notReached.length > 0) throw new NotReachedError(record.messageId, summary.notReached);
  };
  const response = await processPartialResponse(event, recordHandler, processor, {
    context: context as Context | undefined,
    processInParallel: false,
    throwOnFullBatchFailure: false,
  });
  const summary = mergeBatchSummaries(summaries);
  const warn = summary.counts.failed > 0 || summary.revoked > 0 || summary.notReached.length > 0;
  inv.logger[warn ? 'warn' : 'info']('upload batch', {
    records: event.Records.length,
    ...summary,
    batchItemFailures: response.batchItemFailures.length,
  });
  await publishRun(mergeReports(reports, inv.clock()), 'upload', inv.output, {
    records: event.Records.length,
  });
  return response;
}

interface S3Notification {
  Records?: {
    eventName?: string;
    s3?: { bucket?: { name?: string }; object?: { key?: string; eTag?: string } };
  }[];
}

/** One queue message: one S3 notification (or S3's test event, which changes nothing). */
async function handleUpload(record: SQSRecord, inv: Invocation, reports: RunReport[]): Promise<BatchSummary> {
  const { config } = inv;
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
    const rel = notifiedKey(raw, config.certsPrefix);
    if (rel === undefined) continue;
    if (r.eventName?.startsWith('ObjectCreated:')) {
      if (isCertificateKey(rel, config.naming)) created.set(rel, r.s3?.object?.eTag);
      else for (const key of issuerSiblingOwners(rel, config.naming)) created.set(key, undefined);
    } else if (r.eventName?.startsWith('ObjectRemoved:') && isCertificateKey(rel, config.naming)) {
      // A key a run refuses (unsafeKeyReason) never got a staple or an item: nothing to retire,
      // and its `..` would reach DeleteObject, which S3 answers 400, failing the record forever.
      if (unsafeKeyReason(rel) === undefined) removed.add(rel);
    }
  }
  // An issuer sibling names certificates by every extension: keep the ones that exist.
  for (const [key, tag] of created) {
    if (tag === undefined && !(await inv.certificateExists(key))) created.delete(key);
  }
  const retired: string[] = [];
  for (const key of removed) {
    if (created.has(key) || (await inv.certificateExists(key))) continue; // uploaded again since
    await inv.retire(key);
    retired.push(key);
  }
  const objects = [...created].map(([key, tag]) => ({ key, tag: tag && `"${tag}"` }));
  if (objects.length === 0) return batchSummary(undefined, retired);
  const report = await inv.renew(objects, { force: true });
  reports.push(report);
  return batchSummary(report, retired);
}
