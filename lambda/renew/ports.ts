/**
 * The ports: every type run() and the adapters share. A run reads certificates from a certificate
 * source and keeps staples in a staple store; adapters (filesystem, S3, Secrets Manager) implement
 * them. Keys are names relative to the source or store root, with `/` separators:
 * `a/mail.example.com.pem`. OCSP requests go through a Transport; what a run did is its RunReport,
 * and what it remembers is a RunState of StateEntry, persisted as it is decided by a StateSink,
 * in one document (adapters/state-store.ts) or one record per certificate (CertStateStore).
 */
import type { Stage } from '../core/errors.js';
import type { CertStatus } from '../core/ocsp-response.js';

export interface CertificateObject {
  key: string;
  /** Its tag (the S3 ETag, or the file's inode-size-mtime): a new tag means the certificate may have changed. */
  tag: string | undefined;
}

/**
 * The largest certificate object read, from any source (a file, an S3 object, a secret): a
 * certificate bundle is a few KB, and one huge object must not take a run's memory.
 */
export const MAX_CERTIFICATE_BYTES = 1024 * 1024;

/**
 * `<size> MiB is too large for <what> (limit 1 MiB)`, `what` such as `a certificate object`;
 * size undefined: not known, only that it is over.
 */
export function tooLargeError(size: number | undefined, what: string, limit = MAX_CERTIFICATE_BYTES): Error {
  const MiB = 1024 * 1024;
  const cap = `limit ${limit % MiB === 0 ? `${limit / MiB} MiB` : `${limit} bytes`}`;
  return new Error(
    size === undefined
      ? `too large for ${what}: more than the ${cap}`
      : `${(size / MiB).toFixed(1)} MiB is too large for ${what} (${cap})`,
  );
}

export interface CertificateSource {
  /** For messages: `dir /etc/certs`, `s3://bucket/certs/`. */
  readonly description: string;
  list(): Promise<CertificateObject[]>;
  read(key: string): Promise<Buffer>;
  /** `<name>.issuer.pem` beside the certificate, when the source has such a thing. */
  readIssuerSibling?(key: string): Promise<Buffer | undefined>;
}

export interface StapleMeta {
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  producedAt: Date | undefined;
  certStatus: string;
  /** The tag of the certificate the staple was fetched for. */
  certTag: string | undefined;
}

export interface StoredStaple {
  der: Buffer;
  tag: string | undefined;
}

/**
 * The outcome of a conditional staple write: written (with the new change tag), or refused because
 * the staple is no longer the one that was read (another writer got there first).
 */
export type ConditionalPut = { written: true; tag: string | undefined } | { written: false };

export interface StapleStore {
  readonly description: string;
  get(key: string): Promise<StoredStaple | undefined>;
  /** Writes atomically (readers see the old staple or the new one); returns the new tag. */
  put(key: string, der: Buffer, meta: StapleMeta): Promise<string | undefined>;
  /**
   * Writes only if the stored staple is still the one read: `expectedTag` is the tag it had, or
   * null when there was none. A refusal is a value, not an error (see renew/store-staple.ts).
   */
  putIfUnchanged?(
    key: string,
    der: Buffer,
    meta: StapleMeta,
    expectedTag: string | null,
  ): Promise<ConditionalPut>;
  /** Key → tag of every staple, when listing is cheaper than reading (S3). */
  list?(): Promise<Map<string, string>>;
  /** Removes a staple or marker; a key that is not there is not an error. */
  delete(key: string): Promise<void>;
  /** Writes a short text object beside the staples (the withheld marker). */
  putMarker(key: string, text: string): Promise<void>;
}

/** The suffix of the marker written beside a withheld staple: `a/mail.ocsp.withheld`. */
const WITHHELD_SUFFIX = '.withheld';

/**
 * `a/mail.ocsp` → `a/mail.ocsp.withheld`. The marker tells a host that the staple is gone on
 * purpose (the certificate is revoked and `--on-revoked withhold` kept the response back), not
 * because the certificate was retired: stop serving the old staple.
 */
export function withheldMarkerFor(stapleKey: string): string {
  return stapleKey + WITHHELD_SUFFIX;
}

export interface NamingOptions {
  /** Certificate file extensions, longest match wins. */
  certExtensions: string[];
  stapleExtension: string;
}

export const DEFAULT_NAMING: NamingOptions = {
  certExtensions: ['.pem', '.crt', '.cert'],
  stapleExtension: '.ocsp',
};

/**
 * Naming from user input (`--cert-extensions .pem,crt`, CERT_EXTENSIONS, …): a comma list and an
 * extension, with or without their dots; unset parts keep the defaults.
 */
export function namingFrom(
  certExtensions: string | undefined,
  stapleExtension: string | undefined,
): NamingOptions {
  const dotted = (ext: string) => (ext.startsWith('.') ? ext : `.${ext}`);
  return {
    certExtensions: certExtensions
      ? certExtensions.split(',').map((e) => dotted(e.trim()))
      : DEFAULT_NAMING.certExtensions,
    stapleExtension: stapleExtension ? dotted(stapleExtension) : DEFAULT_NAMING.stapleExtension,
  };
}

/** The suffix of a sibling issuer file, never itself taken for a certificate to staple. */
export const ISSUER_SIBLING_SUFFIX = '.issuer.pem';

/** Whether a key names a certificate to staple (not an issuer sibling or an unrelated file). */
export function isCertificateKey(key: string, naming: NamingOptions = DEFAULT_NAMING): boolean {
  return !key.endsWith(ISSUER_SIBLING_SUFFIX) && naming.certExtensions.some((ext) => key.endsWith(ext));
}

/** `a/mail.example.com.pem` → `a/mail.example.com.ocsp`: the certificate name minus its extension. */
export function stapleKeyFor(certKey: string, naming: NamingOptions = DEFAULT_NAMING): string {
  const ext = [...naming.certExtensions].sort((x, y) => y.length - x.length).find((e) => certKey.endsWith(e));
  const base = ext ? certKey.slice(0, -ext.length) : certKey;
  return base + naming.stapleExtension;
}

/**
 * C0 and C1 control characters and DEL: a newline splits one name into several in a host's list
 * (host/pull-staples.sh, `OCSP_CHANGED`), an escape sequence reaches a terminal.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** Whether `text` holds a control character (see CONTROL_CHARACTER). */
function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}

/**
 * Why a certificate key may not name a staple, or undefined when it may. Keys come from outside
 * (uploads, file names) and become staple keys, then paths on hosts: a key with a control
 * character, a leading `/`, or an empty, `.` or `..` component is refused, never renewed.
 */
export function unsafeKeyReason(key: string): string | undefined {
  if (hasControlCharacter(key)) return 'the name holds a control character (newline, escape…)';
  if (key.startsWith('/')) return 'the name starts with /';
  if (key.split('/').some((part) => part === '' || part === '.' || part === '..'))
    return 'the name has an empty, . or .. component';
  return undefined;
}

/** A listed certificate the run refuses to renew: its stable code and the reason, in words. */
export interface RefusedKey {
  code: 'unsafe-name' | 'staple-collision';
  reason: string;
}

/**
 * The keys of a listing that a run refuses: unsafe names (unsafeKeyReason), and certificates
 * whose staple key another certificate also has (`a.pem` and `a.crt` both make `a.ocsp`): each
 * would overwrite the other's staple, so neither is renewed until one is renamed.
 */
export function refusedKeys(
  keys: Iterable<string>,
  naming: NamingOptions = DEFAULT_NAMING,
): Map<string, RefusedKey> {
  const refused = new Map<string, RefusedKey>();
  const byStaple = new Map<string, string[]>();
  for (const key of keys) {
    const unsafe = unsafeKeyReason(key);
    if (unsafe) {
      refused.set(key, {
        code: 'unsafe-name',
        reason: `refused: ${unsafe}; nothing is read or written for it`,
      });
      continue;
    }
    const staple = stapleKeyFor(key, naming);
    const same = byStaple.get(staple);
    if (same) same.push(key);
    else byStaple.set(staple, [key]);
  }
  for (const [staple, same] of byStaple) {
    if (same.length < 2) continue;
    for (const key of same) {
      const others = same.filter((k) => k !== key).join(', ');
      refused.set(key, {
        code: 'staple-collision',
        reason: `refused: ${others} has the same staple ${staple}; neither is renewed until one is renamed`,
      });
    }
  }
  return refused;
}

/** `a/mail.example.com.pem` → `a/mail.example.com.issuer.pem`. */
export function issuerSiblingKeyFor(certKey: string, naming: NamingOptions = DEFAULT_NAMING): string {
  return stapleKeyFor(certKey, { ...naming, stapleExtension: ISSUER_SIBLING_SUFFIX });
}

/**
 * Sends one DER OCSP request to one responder URL. `limits.timeLeft` (milliseconds before the
 * run's deadline) bounds the request: cut by it, the transport rejects with a DeadlineError.
 */
export type Transport = (
  url: string,
  requestDer: Buffer,
  limits?: { timeLeft?: () => number },
) => Promise<{ der: Buffer; maxAgeSec?: number }>;

/**
 * What happened to one certificate in a run. `due` appears only in dry runs ("would renew").
 */
export type Action = 'fresh' | 'renewed' | 'skipped' | 'failed' | 'withheld' | 'due';
export const ACTIONS: readonly Action[] = ['renewed', 'fresh', 'skipped', 'withheld', 'failed', 'due'];

export interface ReportRow {
  /** The certificate's key in its source. */
  key: string;
  /**
   * `key` under its first spelling, which the JSON report keeps (set by `withOldName`): readers of
   * reports written before `key` existed still find it. New code reads `key`.
   */
  name?: string;
  /** The staple's key in the staple store. */
  staple: string;
  action: Action;
  reason: string;
  /** For failures: the stage that failed. */
  stage?: Stage;
  /** For failures, where known: a stable code (a verdict code, `older-than-stored`, …). */
  code?: string;
  certStatus?: CertStatus;
  revocationTime?: string;
  revocationReason?: string;
  thisUpdate?: string;
  nextUpdate?: string;
  nextDue?: string;
  mustStaple?: boolean;
  /** The responder URL that answered. */
  responder?: string;
}

export interface RunReport {
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  counts: Record<Action, number>;
  /** Certificates whose responder says revoked (staple published, withheld, or stored earlier). */
  revoked: number;
  /** The least validity left over all staples seen, in hours (undefined when there are none). */
  leastValidityHours: number | undefined;
  results: ReportRow[];
  /** Certificates not started because the run had to stop (deadline); the next run takes them. */
  notReached: string[];
}

/** Per-certificate memory across runs: failures for backoff, max-age, and the last verdict's times. */
export interface StateEntry {
  certTag?: string;
  stapleTag?: string;
  failures: number;
  lastFailureAt?: string;
  lastError?: string;
  maxAgeUntil?: string;
  thisUpdate?: string;
  nextUpdate?: string;
  responderNotAfter?: string;
  certStatus?: CertStatus;
  nextDue?: string;
  /** The last reported action and reason, replayed by quiet runs. */
  action?: Action;
  reason?: string;
  mustStaple?: boolean;
  /**
   * Fingerprint of the settings a fetch depends on (`<run settings>.<OCSP URLs>`, see plan.ts
   * noteSettings): when it changes, earlier failures no longer count for the backoff.
   */
  settings?: string;
  /** The responder URL that answered last. */
  responder?: string;
  /**
   * Digest of the refresh policy and the revoked-handling setting that `nextDue` was decided
   * under (see job.ts RunContext.policyDigest): when either changes, the state is not replayed,
   * so the due time is decided again from the stored staple and the new setting applies at once.
   */
  policy?: string;
}
export type RunState = Map<string, StateEntry>;

/**
 * Told of each certificate's new state entry as soon as it is decided, so a run killed midway
 * (the Lambda's timeout) loses nothing already decided: the state table writes the one item.
 * Awaited by the run; a rejection fails the run as a whole, so a sink handles what it can retry itself.
 */
export interface StateSink {
  recorded(key: string, entry: StateEntry): void | Promise<void>;
}

/**
 * Per-certificate state, one record per certificate, for fleets whose state no longer fits one
 * document (adapters/dynamo-state.ts). Shaped like adapters/state-store.ts's StateStore (load a
 * RunState, let run() mutate it, save what changed), so the Lambda can swap one for the other,
 * plus what one document cannot do cheaply: read only the due certificates, retire one.
 */
export interface CertStateStore {
  readonly description: string;
  /** The states of these keys (absent keys are simply missing from the map). */
  load(keys: Iterable<string>): Promise<RunState>;
  /** The states whose next due time is at or before `now`: cost grows with what is due, not N. */
  loadDue(now: Date): Promise<RunState>;
  /**
   * Writes every state that changed since it was loaded, each conditional on the version read;
   * a concurrent writer's change is merged (mergeCertState), never lost. Keys loaded but gone
   * from `state` are deleted. The merged values are put back into `state`. Returns the writes.
   */
  save(state: RunState): Promise<number>;
  /** Forgets a certificate (it was deleted). */
  remove(key: string): Promise<void>;
}

/**
 * Merges two concurrent updates of one certificate's state, both made from `base` (what was read;
 * undefined when there was nothing). `ours` is the update being written, `theirs` what another
 * writer stored meanwhile.
 *
 * - failures: both writers' changes since `base` are kept (theirs + ours − base, never below 0),
 *   so two failing runs count two failures, and a success resets only the failures it saw;
 * - lastFailureAt / lastError: the later failure;
 * - the staple's facts (stapleTag, thisUpdate, nextUpdate, responderNotAfter, certStatus): the
 *   newer staple's (thisUpdate);
 * - maxAgeUntil: the later; nextDue: the earlier (at worst one extra check, never a missed one);
 * - the rest (certTag, action, reason, mustStaple): ours, the latest decision.
 */
export function mergeCertState(
  base: StateEntry | undefined,
  ours: StateEntry,
  theirs: StateEntry,
): StateEntry {
  const merged: StateEntry = { ...theirs, ...pick(ours, ['certTag', 'action', 'reason', 'mustStaple']) };
  merged.failures = Math.max(0, theirs.failures + ours.failures - (base?.failures ?? 0));
  const later = laterOf(ours.lastFailureAt, theirs.lastFailureAt);
  const failureFrom = later === undefined ? undefined : later === ours.lastFailureAt ? ours : theirs;
  setOrDelete(merged, 'lastFailureAt', failureFrom?.lastFailureAt);
  setOrDelete(merged, 'lastError', failureFrom?.lastError);
  const stapleFrom = time(ours.thisUpdate) >= time(theirs.thisUpdate) ? ours : theirs;
  for (const field of STAPLE_FIELDS) setOrDelete(merged, field, stapleFrom[field]);
  setOrDelete(merged, 'maxAgeUntil', laterOf(ours.maxAgeUntil, theirs.maxAgeUntil));
  setOrDelete(merged, 'nextDue', earlierOf(ours.nextDue, theirs.nextDue));
  return merged;
}

const STAPLE_FIELDS = ['stapleTag', 'thisUpdate', 'nextUpdate', 'responderNotAfter', 'certStatus'] as const;

function pick(state: StateEntry, fields: (keyof StateEntry)[]): Partial<StateEntry> {
  return Object.fromEntries(fields.filter((f) => state[f] !== undefined).map((f) => [f, state[f]]));
}

function setOrDelete<K extends keyof StateEntry>(
  state: StateEntry,
  field: K,
  value: StateEntry[K] | undefined,
) {
  if (value === undefined) delete state[field];
  else state[field] = value;
}

const time = (iso: string | undefined) => (iso ? Date.parse(iso) : -Infinity);

function laterOf(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return time(a) >= time(b) ? a : b;
}

function earlierOf(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return time(a) <= time(b) ? a : b;
}
