import type { Certificate } from '../core/certificate.js';
import type { HashName } from '../core/der.js';
import { errorMessage } from '../core/errors.js';
import { buildOcspRequest, certIdFor, newNonce } from '../core/ocsp-request.js';
import { parseOcspResponse, type ParsedResponse } from '../core/ocsp-response.js';
import { invalidVerdict, validateResponse, type ValidationCache, type Verdict } from '../core/validate.js';

/** Sends one DER OCSP request to one responder URL. */
export type Transport = (url: string, requestDer: Buffer) => Promise<{ der: Buffer; maxAgeSec?: number }>;

/** One responder URL tried: what came back and what it is worth, or why nothing usable came. */
export interface Attempt {
  url: string;
  /** `fetch` when nothing came back; `validate` when the answer is not a valid response. */
  stage: 'fetch' | 'validate';
  der?: Buffer;
  maxAgeSec?: number;
  /** Present when the answer parsed as an OCSP response. */
  parsed?: ParsedResponse;
  verdict: Verdict;
}

export interface QueryOptions {
  hash: HashName;
  nonce: boolean;
  skewMs?: number;
  now: () => Date;
  cache?: ValidationCache;
  /** Wraps each request, e.g. a per-host concurrency limit. */
  schedule?: <T>(url: string, request: () => Promise<T>) => Promise<T>;
  /** Told of every attempt as it completes (the CLI explains each one). */
  onAttempt?: (attempt: Attempt) => void;
}

/**
 * Asks the certificate's responders in order (every AIA OCSP URL) until one gives a valid response.
 * Returns that attempt, if any, and every attempt made, so a failure can name each URL's problem.
 */
export async function queryResponders(
  leaf: Certificate,
  issuer: Certificate,
  transport: Transport,
  options: QueryOptions,
): Promise<{ valid: (Attempt & { der: Buffer }) | undefined; attempts: Attempt[] }> {
  const attempts: Attempt[] = [];
  const schedule = options.schedule ?? ((_url, request) => request());
  for (const url of leaf.ocspUrls) {
    const nonce = options.nonce ? newNonce() : undefined;
    const request = buildOcspRequest(certIdFor(leaf, issuer, options.hash), { nonce });
    let attempt: Attempt;
    try {
      const response = await schedule(url, () => transport(url, request));
      attempt = {
        url,
        stage: 'validate',
        der: response.der,
        maxAgeSec: response.maxAgeSec,
        verdict: invalidVerdict('unparseable', []),
      };
      try {
        attempt.parsed = parseOcspResponse(response.der);
        attempt.verdict = validateResponse(attempt.parsed, {
          cert: leaf,
          issuer,
          now: options.now(),
          skewMs: options.skewMs,
          nonce,
          hash: options.hash,
          cache: options.cache,
        });
      } catch (err) {
        attempt.verdict.errors.push(`does not parse: ${errorMessage(err)}`);
      }
    } catch (err) {
      attempt = { url, stage: 'fetch', verdict: invalidVerdict('unparseable', [errorMessage(err)], 'fetch') };
    }
    attempts.push(attempt);
    options.onAttempt?.(attempt);
    if (attempt.verdict.valid && attempt.der) return { valid: { ...attempt, der: attempt.der }, attempts };
  }
  return { valid: undefined, attempts };
}

/** `url: problem | url: problem`, for the run report. */
export function describeAttempts(attempts: Attempt[]): string {
  return attempts.map((a) => `${a.url}: ${a.verdict.errors.join('; ')}`).join(' | ');
}
