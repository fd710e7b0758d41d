import {
  ISSUER_SIBLING_SUFFIX,
  isCertificateKey,
  unsafeKeyReason,
  type NamingOptions,
} from '../renew/ports.js';

/** What an invocation asks for, whatever shape its event had. */
export interface RunRequest {
  mode: 'scheduled' | 'force' | 's3-event';
  dryRun: boolean;
  /** Certificate keys relative to the certs prefix; undefined = all. */
  keys?: string[];
  /** A key prefix relative to the certs prefix. */
  prefix?: string;
}

/** The Lambda was invoked with an event it does not take. */
export class EventError extends Error {
  override readonly name = 'EventError';
  readonly code = 'EVENT';
}

interface S3EventRecord {
  eventSource?: string;
  eventName?: string;
  s3?: { bucket?: { name?: string }; object?: { key?: string } };
}

/**
 * Turns an event into a RunRequest:
 * - `{}`, `{"mode":"scheduled"}` or `{"mode":"due"}` (nothing beside it): renew what is due;
 * - `{"mode":"force"}`, with optional `"keys":[…]` or `"prefix":"certs/x/"`: force all or those;
 * - `"dryRun": true` with either: decide and report, write nothing;
 * - an S3 ObjectCreated notification: renew the certificates it names now.
 * Anything else throws EventError and nothing is done.
 */
export function parseEvent(
  event: unknown,
  certsPrefix: string,
  naming: NamingOptions,
  bucket?: string,
): RunRequest {
  if (event === null || event === undefined) return { mode: 'scheduled', dryRun: false };
  if (typeof event !== 'object' || Array.isArray(event)) throw new EventError('event must be a JSON object');
  const e = event as Record<string, unknown>;
  if (e.mode === 'due') {
    // What the schedule sends: the scheduled run, with nothing beside it.
    if (Object.keys(e).length > 1) throw new EventError('{"mode":"due"} takes no other field');
    return { mode: 'scheduled', dryRun: false };
  }
  if (Array.isArray(e.Records))
    return parseS3Event(e.Records as S3EventRecord[], certsPrefix, naming, bucket);

  const allowed = new Set(['mode', 'dryRun', 'keys', 'prefix']);
  const unknown = Object.keys(e).filter((k) => !allowed.has(k));
  if (unknown.length) throw new EventError(`unsupported event field(s): ${unknown.join(', ')}`);
  if (e.dryRun !== undefined && typeof e.dryRun !== 'boolean')
    throw new EventError('dryRun must be a boolean');
  const dryRun = e.dryRun === true;
  const mode = e.mode ?? 'scheduled';
  if (mode === 'scheduled') {
    if (e.keys !== undefined || e.prefix !== undefined) {
      throw new EventError('keys and prefix go with {"mode":"force"}');
    }
    return { mode, dryRun };
  }
  if (mode !== 'force') throw new EventError(`unsupported mode ${JSON.stringify(mode)} (scheduled or force)`);
  if (e.keys !== undefined && e.prefix !== undefined) throw new EventError('give keys or prefix, not both');
  if (e.keys !== undefined) {
    if (!Array.isArray(e.keys) || e.keys.length === 0 || !e.keys.every((k) => typeof k === 'string' && k)) {
      throw new EventError('keys must be a non-empty array of strings');
    }
    return { mode, dryRun, keys: (e.keys as string[]).map((k) => relative(k, certsPrefix)) };
  }
  if (e.prefix !== undefined) {
    if (typeof e.prefix !== 'string') throw new EventError('prefix must be a string');
    return { mode, dryRun, prefix: relative(e.prefix, certsPrefix) };
  }
  return { mode, dryRun };
}

function parseS3Event(
  records: S3EventRecord[],
  certsPrefix: string,
  naming: NamingOptions,
  bucket: string | undefined,
): RunRequest {
  if (records.length === 0 || !records.every((r) => r.eventSource === 'aws:s3')) {
    throw new EventError('Records must all be S3 notifications (eventSource aws:s3)');
  }
  const keys: string[] = [];
  for (const record of records) {
    // Other S3 events (a removed certificate, a test event) and other buckets change nothing here.
    if (!record.eventName?.startsWith('ObjectCreated:')) continue;
    if (bucket && record.s3?.bucket?.name && record.s3.bucket.name !== bucket) continue;
    const raw = record.s3?.object?.key;
    if (!raw) throw new EventError('S3 record without an object key');
    const rel = notifiedKey(raw, certsPrefix);
    if (rel === undefined) continue;
    if (isCertificateKey(rel, naming)) keys.push(rel);
    else keys.push(...issuerSiblingOwners(rel, naming));
  }
  return { mode: 's3-event', dryRun: false, keys };
}

/**
 * An S3 notification's object key relative to the certs prefix; undefined when it is outside the
 * prefix. S3 URL-encodes keys, with + for spaces; a key that does not decode is an EventError.
 */
export function notifiedKey(raw: string, certsPrefix: string): string | undefined {
  let key: string;
  try {
    key = decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw new EventError(`S3 notification object key ${JSON.stringify(raw)} is not URL-encoded`);
  }
  return key.startsWith(certsPrefix) ? key.slice(certsPrefix.length) : undefined;
}

/**
 * The certificates a new `<name>.issuer.pem` belongs to: `<name>` with every certificate
 * extension (whichever exist). None for a key that is no issuer sibling, or an unsafe one
 * (unsafeKeyReason: no run takes its certificates, and S3 answers a `..` key 400).
 */
export function issuerSiblingOwners(rel: string, naming: NamingOptions): string[] {
  if (!rel.endsWith(ISSUER_SIBLING_SUFFIX) || unsafeKeyReason(rel) !== undefined) return [];
  const base = rel.slice(0, -ISSUER_SIBLING_SUFFIX.length);
  return naming.certExtensions.map((ext) => base + ext);
}

/** Accepts a key either relative to the certs prefix or with it. */
function relative(key: string, certsPrefix: string): string {
  return key.startsWith(certsPrefix) ? key.slice(certsPrefix.length) : key;
}
