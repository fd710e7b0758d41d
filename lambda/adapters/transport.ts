import { DEFAULT_HTTP, httpRequest, type HttpOptions, type RequestLimits } from './http.js';
import { fetchOcspResponse } from './ocsp-fetch.js';
import type { Transport } from '../renew/ports.js';

/**
 * The production transport: HTTP(S) with the given timeout, body cap and SSRF guard; each request
 * also bounded by the run's time left, when the caller passes it.
 */
export function httpTransport(options: HttpOptions = DEFAULT_HTTP): Transport {
  return async (url, requestDer, limits) => {
    const res = await fetchOcspResponse(url, requestDer, options, limits);
    return { der: res.der, maxAgeSec: res.maxAgeSec };
  };
}

/**
 * Downloads a caIssuers URL (issuer certificates are small; 256 KiB covers PKCS#7 bundles), bounded
 * by `limits.timeLeft` (the run's deadline) when given.
 */
export function httpIssuerDownload(options: HttpOptions = DEFAULT_HTTP, limits: RequestLimits = {}) {
  return async (url: string): Promise<Uint8Array> => {
    const res = await httpRequest(
      url,
      { method: 'GET' },
      { ...options, maxBytes: Math.max(options.maxBytes, 256 * 1024) },
      limits,
    );
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    return res.body;
  };
}
