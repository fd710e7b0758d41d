import type { Certificate } from '../core/certificate.js';
import type { HashName } from '../core/der.js';
import { DeadlineError, errorMessage } from '../core/errors.js';
import { buildOcspRequest, certIdFor, newNonce } from '../core/ocsp-request.js';
import type { ParsedResponse } from '../core/ocsp-response.js';
import type { Transport } from './ports.js';
import { type ValidationCache } from '../core/responder.js';
import { judgeStapleAhead } from '../core/validate.js';
import { invalidVerdict, type Verdict } from '../core/verdict.js';

/**
 * Thrown when the run had to stop before this certificate's first request was sent (it waited
 * for a per-host slot until the deadline): the certificate was not started, the next run takes it.
 */
export class NotStarted extends Error {
  override readonly name = 'NotStarted';
  readonly code = 'NOT_STARTED';
}

/** One responder URL tried: what came back and what it is worth, or why nothing usable came. */
interface Attempt {
  url: string;
  /** `fetch` when nothing came back; `validate` when the answer is not a valid response. */
  stage: 'fetch' | 'validate';
  der?: Buffer;
  maxAgeSec?: number;
  /** Present when the answer parsed as an OCSP response. */
  parsed?: ParsedResponse | undefined;
  verdict: Verdict;
}

interface QueryOptions {
  hash: HashName;
  nonce: boolean;
  skewMs?: number;
  now: () => Date;
  cache?: ValidationCache;
  /** Wraps each request, e.g. a per-host concurrency limit. */
  schedule?: <T>(url: string, request: () => Promise<T>) => Promise<T>;
  /** Told of every attempt as it completes (the CLI explains each one). */
  onAttempt?: (attempt: Attempt) => void;
  /** Milliseconds left before the run's deadline; bounds each request (see Transport). */
  timeLeft?: () => number;
  /**
   * Checked when the first request gets its slot (after any wait in `schedule`): true throws
   * NotStarted, so a certificate queued behind a slow host is left for the next run.
   */
  shouldStop?: () => boolean;
}

/**
 * The most OCSP URLs of one certificate tried in one run. A certificate names as many as its
 * issuer (or whoever made it) wrote: 300 slow ones cost 50 minutes; real ones name one or two.
 */
export const MAX_OCSP_URLS = 4;

/**
 * Asks the certificate's responders in order (its first MAX_OCSP_URLS AIA OCSP URLs; the rest are
 * `notTried`) until one gives a valid response. Returns that attempt, if any, and every attempt
 * made, so a failure can name each URL's problem.
 * The run's deadline ends the query: a request cut by it rejects with a DeadlineError (the
 * attempts so far in its message), and one never sent with NotStarted.
 */
export async function queryResponders(
  leaf: Certificate,
  issuer: Certificate,
  transport: Transport,
  options: QueryOptions,
): Promise<{ valid: (Attempt & { der: Buffer }) | undefined; attempts: Attempt[]; notTried: string[] }> {
  const attempts: Attempt[] = [];
  const notTried = leaf.ocspUrls.slice(MAX_OCSP_URLS);
  const schedule = options.schedule ?? ((_url, request) => request());
  const limits = options.timeLeft ? { timeLeft: options.timeLeft } : undefined;
  for (const url of leaf.ocspUrls.slice(0, MAX_OCSP_URLS)) {
    const nonce = options.nonce ? newNonce() : undefined;
    const request = buildOcspRequest(certIdFor(leaf, issuer, options.hash), { nonce });
    const first = attempts.length === 0;
    let attempt: Attempt;
    try {
      const response = await schedule(url, () => {
        if (first && options.shouldStop?.()) throw new NotStarted(`${url}: the run stopped first`);
        return transport(url, request, limits);
      });
      // Parsed and validated as every staple is; the signature verifications run in the thread pool.
      const { parsed, verdict } = await judgeStapleAhead(response.der, {
        cert: leaf,
        issuer,
        now: options.now(),
        skewMs: options.skewMs,
        nonce,
        hash: options.hash,
        cache: options.cache,
      });
      attempt = { url, stage: 'validate', der: response.der, maxAgeSec: response.maxAgeSec, parsed, verdict };
    } catch (err) {
      if (err instanceof NotStarted) throw err;
      if (err instanceof DeadlineError) {
        const before = attempts.length ? ` (before: ${describeAttempts(attempts)})` : '';
        throw new DeadlineError(`${url}: ${err.message}${before}`, { cause: err });
      }
      attempt = { url, stage: 'fetch', verdict: invalidVerdict('unparseable', [errorMessage(err)], 'fetch') };
    }
    attempts.push(attempt);
    options.onAttempt?.(attempt);
    if (attempt.verdict.valid && attempt.der)
      return { valid: { ...attempt, der: attempt.der }, attempts, notTried };
  }
  return { valid: undefined, attempts, notTried };
}

/**
 * `url: problem | url: problem`, for the run report, then how many URLs were skipped:
 * `| 296 more OCSP URLs skipped (at most 4 are tried)`.
 */
export function describeAttempts(attempts: Attempt[], notTried: readonly string[] = []): string {
  const tried = attempts.map((a) => `${a.url}: ${a.verdict.errors.join('; ')}`);
  if (notTried.length)
    tried.push(`${notTried.length} more OCSP URL(s) skipped (at most ${MAX_OCSP_URLS} are tried)`);
  return tried.join(' | ');
}
