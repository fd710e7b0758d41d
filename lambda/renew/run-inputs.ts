import type { Certificate } from '../core/certificate.js';
import type { HashName } from '../core/der.js';
import type { RefreshPolicy } from '../core/refresh-policy.js';
import type { OnRevoked } from '../core/replace.js';
import type {
  CertificateSource,
  NamingOptions,
  ReportRow,
  RunState,
  StapleStore,
  StateSink,
  Transport,
} from './ports.js';

/** What a run takes: its ports (RunDeps) and its options (RunOptions). run.ts runs them. */
export interface RunDeps {
  source: CertificateSource;
  store: StapleStore;
  transport: Transport;
  /** Downloads a caIssuers URL; wrap it in a cache (see cachedDownload). */
  downloadIssuer?: (url: string) => Promise<Uint8Array>;
  /** Certificates from an issuers directory. */
  issuerPool?: readonly Certificate[];
  clock: () => Date;
  /** Mutated in place: pass the same map to the next run to keep backoff and max-age. */
  state?: RunState;
  /** Persists each certificate's entry as it is decided (see StateSink); not told in dry runs. */
  stateSink?: StateSink;
  /**
   * Trust the state for certificates whose certificate and staple tags are unchanged and whose
   * next due time has not come: report them fresh without reading anything. Needs a staple store
   * that can list (S3, a directory), so a deleted or replaced staple is still noticed.
   */
  trustState?: boolean;
}

export interface RunOptions {
  /** Renew regardless of the policy: all certificates (true) or those the predicate picks. */
  force?: boolean | ((key: string) => boolean);
  /** Restrict the run to these certificate keys (an S3 event, a targeted force). */
  only?: (key: string) => boolean;
  /** Decide and report; fetch and write nothing. */
  dryRun?: boolean;
  onRevoked?: OnRevoked;
  /** CertID hash; SHA-1 by default, as RFC 5019 responders expect. */
  hash?: HashName;
  /** Send a nonce. Off by default: most CAs pre-sign and ignore it. */
  nonce?: boolean;
  skewMs?: number;
  policy?: RefreshPolicy;
  concurrency?: number;
  /** At most this many requests in flight to one responder host. */
  perHostConcurrency?: number;
  naming?: NamingOptions;
  /**
   * Checked before each certificate is started, and again when its first request gets its
   * per-host slot; true stops taking new work (those certificates are reported `notReached`).
   */
  shouldStop?: () => boolean;
  /**
   * Milliseconds left before the run's deadline: every OCSP request is bounded by it. A
   * certificate whose request it cuts is reported failed (reason "run deadline: …") without
   * counting as a failure for the backoff; the next run asks again.
   */
  timeLeft?: () => number;
  /**
   * The transport's own settings that decide whether a fetch can succeed (private responders
   * allowed, timeout), as a string: with hash, nonce and the certificate's OCSP URLs it makes the
   * settings fingerprint, whose change clears the backoff.
   */
  responderPolicy?: string;
  /** Called as each certificate finishes (a progress line, say): its row, finished so far, total. */
  onResult?: (result: ReportRow, done: number, total: number) => void;
}
