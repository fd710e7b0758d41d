import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP } from 'node:net';

/**
 * Refuses addresses a responder or caIssuers URL should never point at: loopback, link-local
 * (169.254.0.0/16, which includes the cloud metadata service, and fe80::/10) and unspecified.
 * Private ranges (10/8, 172.16/12, 192.168/16) stay allowed: private CAs live there.
 */
export function isForbiddenAddress(address: string): boolean {
  const v4 = isIP(address) === 4 ? address : mappedV4(address);
  if (v4) {
    const [a, b] = v4.split('.').map(Number);
    return a === 127 || a === 0 || (a === 169 && b === 254);
  }
  if (isIP(address) !== 6) return false;
  const lower = address.toLowerCase();
  if (lower === '::1' || lower === '::') return true;
  const first = parseInt(lower.split(':')[0] || '0', 16);
  return (first & 0xffc0) === 0xfe80;
}

function mappedV4(address: string): string | undefined {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match?.[1];
}

export class ForbiddenAddressError extends Error {
  readonly code = 'EFORBIDDENADDRESS';
}

/** Environment variable that lifts the guard, like --allow-private-responders. */
export const ALLOW_PRIVATE_ENV = 'OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS';

export function privateRespondersAllowed(flag?: boolean): boolean {
  if (flag) return true;
  const env = process.env[ALLOW_PRIVATE_ENV];
  return env === '1' || env === 'true' || env === 'yes';
}

/** Checks a literal IP host before connecting (node's lookup is not called for IP literals). */
export function assertHostAllowed(hostname: string): void {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && isForbiddenAddress(host)) {
    throw new ForbiddenAddressError(
      `refusing ${host}: loopback/link-local/unspecified address (see --allow-private-responders)`,
    );
  }
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A dns.lookup replacement for http.request that refuses forbidden addresses after resolution,
 * so the address checked is the address connected to (no DNS-rebinding gap).
 */
export function guardedLookup(
  hostname: string,
  options: LookupAllOptions | object,
  callback: LookupCallback,
): void {
  dnsLookup(hostname, { ...(options as object), all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const list = addresses as LookupAddress[];
    const bad = list.find((a) => isForbiddenAddress(a.address));
    if (bad) {
      return callback(
        new ForbiddenAddressError(
          `refusing ${hostname}: resolves to ${bad.address}, a loopback/link-local/unspecified address (see --allow-private-responders)`,
        ),
        [],
      );
    }
    if ((options as LookupAllOptions).all) return callback(null, list);
    const first = list[0];
    if (!first) return callback(new Error(`no address for ${hostname}`), []);
    callback(null, first.address, first.family);
  });
}
