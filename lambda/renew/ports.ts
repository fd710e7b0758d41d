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

/** `a/mail.example.com.pem` → `a/mail.example.com.issuer.pem`. */
export function issuerSiblingKeyFor(certKey: string, naming: NamingOptions = DEFAULT_NAMING): string {
  return stapleKeyFor(certKey, { ...naming, stapleExtension: ISSUER_SIBLING_SUFFIX });
}
