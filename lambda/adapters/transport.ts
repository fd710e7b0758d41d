import type { Transport } from '../renew/run.js';
import { DEFAULT_HTTP, httpRequest, type HttpOptions } from './http.js';
import { fetchOcspResponse } from './ocsp-fetch.js';

/** The production transport: HTTP(S) with the given timeout, body cap and SSRF guard. */
export function httpTransport(options: HttpOptions = DEFAULT_HTTP): Transport {
  return async (url, requestDer) => {
    const res = await fetchOcspResponse(url, requestDer, options);
    return { der: res.der, maxAgeSec: res.maxAgeSec };
  };
}

/** Downloads a caIssuers URL (issuer certificates are small; 256 KiB covers PKCS#7 bundles). */
export function httpIssuerDownload(options: HttpOptions = DEFAULT_HTTP) {
  return async (url: string): Promise<Uint8Array> => {
    const res = await httpRequest(
      url,
      { method: 'GET' },
      { ...options, maxBytes: Math.max(options.maxBytes, 256 * 1024) },
    );
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    return res.body;
  };
}
