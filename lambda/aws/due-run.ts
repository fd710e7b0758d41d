import { PutObjectCommand } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import type { DynamoStateStore } from '../adapters/dynamo-state.js';
import { s3StateBlob, S3CertificateSource } from '../adapters/s3.js';
import { StateStore } from '../adapters/state-store.js';
import { errorMessage } from '../core/errors.js';
import { isCertificateKey, type CertificateObject, type RunReport, type RunState } from '../renew/ports.js';
import { inlineMaxKeys } from './due-run-limit.js';
import { executionName, type Invocation } from './invocation.js';
import { mergeReports, publishRun } from './run-output.js';
import { shortId, type RunSummary } from './run-summary.js';
import { writeStatusPage } from './status-page.js';

/** The marker item that says every certificate of the bucket has had an item once. */
export const SEEDED_MARKER = 'seeded';

/**
 * The scheduled run: the certificates whose next due time has come, read from the state table's
 * due index (one Query per shard), and only those — a quiet fleet costs a few requests whatever
 * its size. Up to INLINE_MAX_KEYS are renewed here; more are written as a manifest (a JSON array of
 * certificate object keys, `<reports>manifests/…json`) and handed to the state machine, whose
 * Distributed Map batches them over invocations.
 *
 * The first run over a table (no `#seeded` marker) also seeds it, so nothing lapses when this
 * design is deployed over a bucket of the old one (`state/state.json`) or over certificates
 * uploaded before the table existed: every listed certificate without an item gets one — from
 * the old state's entry when there is one (its failure count and next due time kept), else it is
 * renewed now like a due one (a fresh staple is read and kept, and its item written). The marker
 * is written once that is handed off; a run that dies before seeds again (items already there
 * are kept).
 *
 * With SECRETS_PREFIX, every run also lists the secrets (no notification says one changed): a
 * secret without an item, or whose LastChangedDate is not its item's, joins the due set. Secrets
 * are renewed here, never handed to the state machine (whose children read S3).
 */
export async function dueRun(inv: Invocation, dryRun: boolean): Promise<RunSummary> {
  const inlineMax = inlineMaxKeys(inv.env);
  const now = inv.clock();
  const store = inv.stateStore();
  const state = await store.loadDue(now);
  const objects: CertificateObject[] = [...state].map(([key, entry]) => ({ key, tag: entry.certTag }));
  const seeding = !(await inv.stateStore().hasMarker(SEEDED_MARKER));
  let seeded = 0;
  if (seeding) {
    const more = await seed(inv, store, state, now, dryRun);
    objects.push(...more.objects);
    seeded = more.seeded;
  }
  const retired = await retireDeletedSecrets(inv, store, state, objects, dryRun);
  objects.push(...(await changedSecrets(inv, store, state, objects)));
  const due = objects.length;
  let summary: RunSummary;
  if (objects.length <= inlineMax) {
    const report = await inv.renew(objects, {
      force: false,
      dryRun,
      loaded: { store, state },
      withSecrets: true,
    });
    summary = await publishRun(report, 'due', inv.output, {
      due,
      seeded,
      inline: true,
      ...(retired.length ? { retired } : {}),
    });
  } else {
    const secretKeys = new Set((await inv.secretCertificates()).map((o) => o.key));
    const secrets = objects.filter((o) => secretKeys.has(o.key));
    const report = secrets.length
      ? await inv.renew(secrets, { force: false, dryRun, withSecrets: true })
      : undefined;
    const rest = objects.filter((o) => !secretKeys.has(o.key));
    summary = await handOff(
      inv,
      rest,
      false,
      'due',
      { due, seeded, ...(retired.length ? { retired } : {}) },
      report,
    );
  }
  // Certificates the deadline left during seeding have no item yet: seed again next run.
  if (seeding && !dryRun && summary.notReached === 0) await inv.stateStore().putMarker(SEEDED_MARKER, now);
  if (!dryRun) await writeStatusPage(inv);
  return summary;
}

/**
 * Seeds the table from the listing: the certificates without an item. With an entry in the old
 * state object, the entry becomes the item (and the certificate joins the due set when that entry
 * says it is due); without one, the certificate joins the due set as it is.
 */
async function seed(
  inv: Invocation,
  store: DynamoStateStore,
  state: RunState,
  now: Date,
  dryRun: boolean,
): Promise<{ objects: CertificateObject[]; seeded: number }> {
  const { config, s3 } = inv;
  const listed = await new S3CertificateSource(s3, config.bucket, config.certsPrefix, config.naming).list();
  // A store of its own: the due run's store deletes, on save, what it loaded and the run dropped.
  const lookup = inv.stateStore();
  const known = await lookup.load(listed.map((o) => o.key));
  const old = await new StateStore(
    s3StateBlob(s3, config.bucket, config.stateKey),
    ({ level, msg, ...fields }) => inv.logger[level === 'warn' ? 'warn' : 'info'](String(msg), fields),
  ).load();
  const objects: CertificateObject[] = [];
  const imported: string[] = [];
  const limit = pLimit(16);
  const writes: Promise<unknown>[] = [];
  for (const object of listed) {
    if (known.has(object.key) || state.has(object.key)) continue;
    const entry = old.get(object.key);
    if (!entry) {
      objects.push(object);
      continue;
    }
    const isDue = !entry.nextDue || Date.parse(entry.nextDue) <= now.getTime();
    if (dryRun) {
      // Nothing is written: the old entry is what the run decides from.
      if (isDue) {
        state.set(object.key, entry);
        objects.push({ key: object.key, tag: entry.certTag });
      }
      continue;
    }
    writes.push(limit(() => lookup.write(object.key, entry)));
    if (isDue) imported.push(object.key);
  }
  await Promise.all(writes);
  // The imported items that are due join the run with the versions just written.
  for (const [key, entry] of await store.load(imported)) {
    state.set(key, entry);
    objects.push({ key, tag: entry.certTag });
  }
  inv.logger.info('state table seeded', {
    listed: listed.length,
    imported: writes.length,
    renewNow: objects.length,
    oldState: old.size > 0 ? `s3://${config.bucket}/${config.stateKey}` : null,
  });
  return { objects, seeded: listed.length - known.size };
}

/**
 * The secrets scheduled for deletion (DeleteSecret) that still have an item are retired as an S3
 * ObjectRemoved retires a certificate: staple deleted, item removed, no failure and no backoff.
 * A key that is also an S3 certificate is not: S3 comes first, and that certificate is still
 * there. Retired keys leave the run's due set and state. One BatchGetItem when any secret is
 * scheduled for deletion (and a HeadObject for one named like a certificate), none otherwise.
 * A dry run only says which it would retire. A retirement that fails (the listing, a delete) is
 * logged and left for the next run: it never stops the run's renewals.
 */
async function retireDeletedSecrets(
  inv: Invocation,
  store: DynamoStateStore,
  state: RunState,
  due: CertificateObject[],
  dryRun: boolean,
): Promise<string[]> {
  let deleted: string[];
  try {
    deleted = await inv.deletedSecrets();
  } catch (err) {
    inv.logger.warn('cannot list the secrets scheduled for deletion', { error: errorMessage(err) });
    return [];
  }
  if (deleted.length === 0) return [];
  const { config } = inv;
  const notDue = deleted.filter((key) => !state.has(key));
  const known = notDue.length ? await inv.stateStore().load(notDue) : new Map();
  const retired: string[] = [];
  // Out of this run's due set: retired, or left for the next run to retire (never read as a
  // certificate that is not there, which would only count a failure).
  const gone = new Set<string>();
  for (const key of deleted) {
    if (!state.has(key) && !known.has(key)) continue;
    try {
      if (isCertificateKey(key, config.naming) && (await inv.certificateExists(key))) continue;
      // The due run's own store removes what it loaded (its versions); another one the rest.
      if (!dryRun) await inv.retire(key, state.has(key) ? store : undefined);
    } catch (err) {
      inv.logger.warn('cannot retire a deleted secret; the next run tries again', {
        certificate: key,
        error: errorMessage(err),
      });
      gone.add(key);
      continue;
    }
    state.delete(key);
    retired.push(key);
    gone.add(key);
  }
  due.splice(0, due.length, ...due.filter((o) => !gone.has(o.key)));
  return retired;
}

/**
 * The secrets (SECRETS_PREFIX) not already due whose item is missing or older than the secret
 * (its certTag is not the secret's LastChangedDate): their items join the run's state, with the
 * versions read, and they join the due set. Secrets already due get their listed tag, so a
 * rotated one is recorded as read.
 */
async function changedSecrets(
  inv: Invocation,
  store: DynamoStateStore,
  state: RunState,
  due: CertificateObject[],
): Promise<CertificateObject[]> {
  const secrets = await inv.secretCertificates();
  const tags = new Map(secrets.map((o) => [o.key, o.tag]));
  for (const o of due) if (tags.has(o.key)) o.tag = tags.get(o.key);
  const listed = secrets.filter((o) => !state.has(o.key));
  if (listed.length === 0) return [];
  // A store of its own for the look-up: the run's store saves (and deletes) what it loaded.
  const known = await inv.stateStore().load(listed.map((o) => o.key));
  const changed = listed.filter((o) => known.get(o.key)?.certTag !== o.tag);
  for (const [key, entry] of await store.load(changed.map((o) => o.key))) state.set(key, entry);
  return changed;
}

/**
 * Hands a set of certificates too large for one invocation to the state machine: a manifest of
 * their object keys under `<reports>manifests/`, and an execution whose map reads it.
 */
export async function handOff(
  inv: Invocation,
  objects: CertificateObject[],
  force: boolean,
  kind: string,
  extra: Record<string, unknown> = {},
  /** What this invocation renewed itself (the secrets), reported beside the hand-off. */
  inline?: RunReport,
): Promise<RunSummary> {
  const { config } = inv;
  const now = inv.clock();
  const manifest = `${config.reportsPrefix}manifests/${now.toISOString()}-${shortId(inv.output.id)}.json`;
  await inv.s3.send(
    new PutObjectCommand({
      Bucket: config.bucket,
      Key: manifest,
      Body: Buffer.from(JSON.stringify(objects.map((o) => config.certsPrefix + o.key))),
      ContentType: 'application/json',
    }),
  );
  const execution = await inv.startExecution(executionName(kind, now, inv.output.id), { manifest, force });
  const where = {
    manifest: `s3://${config.bucket}/${manifest}`,
    execution,
    results: mapResultsLocation(inv),
  };
  // The map's invocations report their own runs; this one reports the hand-off (and the heartbeat).
  return publishRun(inline ?? emptyReport(now), kind, inv.output, {
    keys: objects.length,
    inline: false,
    ...extra,
    ...where,
  });
}

/** Where map runs write their result files (infra/fleet.ts MAP_RESULTS_FOLDER). */
export function mapResultsLocation(inv: Invocation): string {
  return `s3://${inv.config.bucket}/${inv.config.reportsPrefix}map-runs/`;
}

function emptyReport(now: Date): RunReport {
  return mergeReports([], now);
}
