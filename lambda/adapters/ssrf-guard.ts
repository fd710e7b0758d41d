import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Refuses addresses a responder or caIssuers URL should never point at: loopback, link-local
 * (169.254.0.0/16, which includes the cloud metadata service, and fe80::/10) and unspecified.
 * Private ranges (10/8, 172.16/12, 192.168/16) stay allowed: private CAs live there.
 */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  // BlockList parses every textual form and checks IPv4-mapped IPv6 (::ffff:7f00:1) against the IPv4 rules.
  return FORBIDDEN.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

const FORBIDDEN = new BlockList();
FORBIDDEN.addSubnet('127.0.0.0', 8, 'ipv4'); // loopback
FORBIDDEN.addSubnet('0.0.0.0', 8, 'ipv4'); // unspecified / "this network"
FORBIDDEN.addSubnet('169.254.0.0', 16, 'ipv4'); // link-local, cloud metadata
FORBIDDEN.addAddress('::1', 'ipv6'); // loopback
FORBIDDEN.addAddress('::', 'ipv6'); // unspecified
FORBIDDEN.addSubnet('fe80::', 10, 'ipv6'); // link-local

export class ForbiddenAddressError extends Error {
  readonly code = 'EFORBIDDENADDRESS';
}

/** Environment variable that lifts the guard, like --allow-private-responders. */
export const ALLOW_PRIVATE_ENV = 'OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS';

export function privateRespondersAllowed(flag = false, env: NodeJS.ProcessEnv = process.env): boolean {
  if (flag) return true;
  const value = env[ALLOW_PRIVATE_ENV];
  return value === '1' || value === 'true' || value === 'yes';
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
