/**
 * The two storage ports. The core reads certificates from a certificate source and keeps staples
 * in a staple store; adapters (filesystem, S3, Secrets Manager) implement them. Keys are names
 * relative to the source or store root, with `/` separators: `a/mail.example.com.pem`.
 */
export interface CertificateObject {
  key: string;
  /** Its tag (the S3 ETag, or the file's mtime-size): a new tag means the certificate may have changed. */
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
export const WITHHELD_SUFFIX = '.withheld';

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
export function hasControlCharacter(text: string): boolean {
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
