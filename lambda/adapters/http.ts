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
  /** Connections kept open (keep-alive) to one responder host: the run's per-host limit (4 by default). */
  maxSocketsPerHost?: number;
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

/** How an HTTP request failed: timed out, bad URL, not http(s), body over the cap, reset by the peer. */
type HttpErrorCode = 'TIMEOUT' | 'INVALID_URL' | 'UNSUPPORTED_PROTOCOL' | 'BODY_TOO_LARGE' | 'ECONNRESET';

/** One HTTP request failed; `code` says how (`TIMEOUT`, `ECONNRESET`, …). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly code: HttpErrorCode;

  constructor(message: string, options: { code: HttpErrorCode; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.code = options.code;
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
 * Keep-alive agents, one per protocol, guard on or off and socket limit, so a run reuses its
 * connections to a responder instead of opening one per certificate (a TCP, and for https a TLS,
 * handshake each). A socket opened without the SSRF guard is never handed to a guarded request:
 * the guard is part of the key. Every new socket resolves through the guarded lookup (given to the
 * agent and to each request); a reused socket is connected to an address that lookup already let
 * through. Idle sockets do not keep the process alive (node unrefs them).
 */
const agents = new Map<string, http.Agent>();
function agentFor(protocol: string, options: HttpOptions): http.Agent {
  const maxSockets = options.maxSocketsPerHost ?? 4;
  const key = `${protocol} ${options.allowPrivate ? 'open' : 'guarded'} ${maxSockets}`;
  let agent = agents.get(key);
  if (!agent) {
    const init: http.AgentOptions = {
      keepAlive: true,
      maxSockets,
      maxFreeSockets: maxSockets,
      ...(options.allowPrivate ? {} : { lookup: guardedLookup as never }),
    };
    agent = protocol === 'https:' ? new https.Agent(init) : new http.Agent(init);
    agents.set(key, agent);
  }
  return agent;
}

/**
 * One HTTP(S) request with a timeout, a body cap and the SSRF guard. No redirects are followed.
 * With `limits.timeLeft`, the timeout is also bounded by the run's deadline: a request cut by it
 * (or not sent, no time being left) rejects with a DeadlineError.
 */
export function httpRequest(
  url: string,
  init: HttpRequestInit,
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
      : new HttpError(`timed out after ${options.timeoutMs} ms`, { code: 'TIMEOUT' });
  let parsed: URL;
  try {
    parsed = allowedUrl(url, options);
  } catch (err) {
    return Promise.reject(err);
  }
  return send(parsed, init, options, { timeoutMs, timeoutError });
}

interface HttpRequestInit {
  method: 'GET' | 'POST';
  body?: Buffer;
  headers?: Record<string, string>;
}

/**
 * The URL to request: it parses, it is http or https, and unless `allowPrivate` its host passes
 * the SSRF guard. Throws HttpError (INVALID_URL, UNSUPPORTED_PROTOCOL) or the guard's error.
 */
function allowedUrl(url: string, options: HttpOptions): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HttpError(`invalid URL ${url}`, { code: 'INVALID_URL' });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new HttpError(`refusing ${parsed.protocol} URL ${url}: only http and https`, {
      code: 'UNSUPPORTED_PROTOCOL',
    });
  }
  if (!options.allowPrivate) assertHostAllowed(parsed.hostname);
  return parsed;
}

/**
 * Sends the request and reads the body up to `maxBytes`; every way out (response, error, body
 * over the cap, timeout) clears the timer, and the first one settles.
 */
function send(
  parsed: URL,
  init: HttpRequestInit,
  options: HttpOptions,
  timeout: { timeoutMs: number; timeoutError: () => Error },
): Promise<HttpResponse> {
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
        agent: agentFor(parsed.protocol, options),
      },
      (res) => {
        during = 'while reading the response body';
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) {
            // Reject first: when the whole body is already in, destroy() dumps it and 'end' follows.
            const err = new HttpError(`response body exceeds ${options.maxBytes} bytes`, {
              code: 'BODY_TOO_LARGE',
            });
            clearTimeout(timer);
            reject(err);
            // Without the error: the promise is settled, and a keep-alive socket destroyed with
            // one would raise it where nothing listens. The socket is closed, never reused.
            req.destroy();
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
    const timer = setTimeout(() => req.destroy(timeout.timeoutError()), timeout.timeoutMs);
    req.on('error', fail);
    req.end(init.body);
  });
}
