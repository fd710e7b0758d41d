import http from 'node:http';
import https from 'node:https';
import { DeadlineError } from '../core/errors.js';
import { assertHostAllowed, guardedLookup } from './ssrf-guard.js';

export interface HttpOptions {
  /** Whole-request timeout, connect to last byte. */
  timeoutMs: number;
  /** Largest body accepted; a longer one aborts the request. */
  maxBytes: number;
  /** Lift the loopback/link-local guard (tests, on-host responders). */
  allowPrivate: boolean;
}

export const DEFAULT_HTTP: HttpOptions = { timeoutMs: 10_000, maxBytes: 64 * 1024, allowPrivate: false };

/** The settings that decide whether a request can succeed, for run()'s `responderPolicy`. */
export function responderPolicyOf(options: HttpOptions): string {
  return JSON.stringify({
    allowPrivate: options.allowPrivate,
    timeoutMs: options.timeoutMs,
    maxBytes: options.maxBytes,
  });
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class HttpError extends Error {
  /** `ECONNRESET` for a connection the peer reset; undefined otherwise. */
  readonly code: string | undefined;

  constructor(message: string, options?: { code?: string; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.code = options?.code;
  }
}

/** Node reports a reset mid-body as "aborted" (code ECONNRESET): say what happened. */
function described(err: Error, during: string): Error {
  if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') return err;
  return new HttpError(`connection reset by the peer ${during}`, { code: 'ECONNRESET', cause: err });
}

/** What bounds one request besides its options: the time left before the run's deadline. */
export interface RequestLimits {
  /** Milliseconds left; the request's timeout is min(timeoutMs, timeLeft()), read as it starts. */
  timeLeft?: () => number;
}

/**
 * One HTTP(S) request with a timeout, a body cap and the SSRF guard. No redirects are followed.
 * With `limits.timeLeft`, the timeout is also bounded by the run's deadline: a request cut by it
 * (or not sent, no time being left) rejects with a DeadlineError.
 */
export function httpRequest(
  url: string,
  init: { method: 'GET' | 'POST'; body?: Buffer; headers?: Record<string, string> },
  options: HttpOptions,
  limits: RequestLimits = {},
): Promise<HttpResponse> {
  const left = limits.timeLeft ? Math.floor(limits.timeLeft()) : Infinity;
  if (left <= 0) {
    return Promise.reject(new DeadlineError(`not sent: the run's deadline has come (${url})`));
  }
  const timeoutMs = Math.min(options.timeoutMs, left);
  const timeoutError = () =>
    timeoutMs < options.timeoutMs
      ? new DeadlineError(`cut after ${timeoutMs} ms: the run's deadline came`)
      : new HttpError(`timed out after ${options.timeoutMs} ms`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.reject(new HttpError(`invalid URL ${url}`));
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return Promise.reject(new HttpError(`refusing ${parsed.protocol} URL ${url}: only http and https`));
  }
  if (!options.allowPrivate) {
    try {
      assertHostAllowed(parsed.hostname);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  const client = parsed.protocol === 'https:' ? https : http;
  return new Promise<HttpResponse>((resolve, reject) => {
    let during = 'before the response';
    // A reset mid-body reaches the request, the response or both: the first one settles.
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(described(err, during));
    };
    const req = client.request(
      parsed,
      {
        method: init.method,
        headers: { 'user-agent': 'ocsp-renewer', ...init.headers },
        ...(options.allowPrivate ? {} : { lookup: guardedLookup as never }),
        agent: false,
      },
      (res) => {
        during = 'while reading the response body';
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) {
            // Reject first: when the whole body is already in, destroy() dumps it and 'end' follows.
            const err = new HttpError(`response body exceeds ${options.maxBytes} bytes`);
            clearTimeout(timer);
            reject(err);
            req.destroy(err);
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on('error', fail);
      },
    );
    // Every way out clears it, or it keeps the process alive for up to timeoutMs.
    const timer = setTimeout(() => req.destroy(timeoutError()), timeoutMs);
    req.on('error', fail);
    req.end(init.body);
  });
}
