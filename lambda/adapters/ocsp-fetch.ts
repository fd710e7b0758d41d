import {
  DEFAULT_HTTP,
  httpRequest,
  type HttpOptions,
  type HttpResponse,
  type RequestLimits,
} from './http.js';

/** RFC 5019 §5: GET only when the whole URL fits in 255 bytes. */
const MAX_GET_URL = 255;

interface FetchedResponse {
  der: Buffer;
  url: string;
  method: 'GET' | 'POST';
  /** Cache-Control max-age in seconds, when the responder sent one. */
  maxAgeSec: number | undefined;
}

/** The GET URL for a request: `{url}/{url-encoded base64 of the DER}` (RFC 6960 Appendix A.1). */
export function getUrlFor(url: string, requestDer: Buffer): string {
  const base = url.endsWith('/') ? url : `${url}/`;
  return base + encodeURIComponent(requestDer.toString('base64'));
}

/**
 * Fetches an OCSP response from one responder URL: GET when the URL is short enough, else POST;
 * a GET answered with HTTP 4xx/5xx is retried once by POST. Throws on transport errors and on a
 * final non-200 status. Each of the two requests is bounded by `limits.timeLeft` as it starts.
 */
export async function fetchOcspResponse(
  url: string,
  requestDer: Buffer,
  options: HttpOptions = DEFAULT_HTTP,
  limits: RequestLimits = {},
): Promise<FetchedResponse> {
  const getUrl = getUrlFor(url, requestDer);
  if (Buffer.byteLength(getUrl) <= MAX_GET_URL) {
    const res = await httpRequest(getUrl, { method: 'GET' }, options, limits);
    if (res.status === 200) return done(res, url, 'GET');
    if (res.status < 400) throw new Error(`responder answered HTTP ${res.status} to GET`);
  }
  const res = await httpRequest(
    url,
    { method: 'POST', body: requestDer, headers: { 'content-type': 'application/ocsp-request' } },
    options,
    limits,
  );
  if (res.status !== 200) throw new Error(`responder answered HTTP ${res.status}`);
  return done(res, url, 'POST');
}

function done(res: HttpResponse, url: string, method: 'GET' | 'POST'): FetchedResponse {
  return { der: res.body, url, method, maxAgeSec: maxAge(res.headers['cache-control']) };
}

export function maxAge(cacheControl: string | undefined): number | undefined {
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl ?? '');
  return match ? Number(match[1]) : undefined;
}
