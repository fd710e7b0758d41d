import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Refuses addresses a responder or caIssuers URL should never point at: loopback, link-local
 * (169.254.0.0/16 and fe80::/10), unspecified, and the cloud metadata and platform services
 * (AWS 169.254.169.254 and, over IPv6, fd00:ec2::254 with the DNS resolver fd00:ec2::23; Azure
 * 168.63.129.16; Alibaba 100.100.100.200). Each refused IPv4 address is also refused inside IPv6:
 * IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d, RFC 6052), which a DNS64 resolver
 * hands out for an IPv4-only name. Private ranges (10/8, 172.16/12, 192.168/16, fd00::/8) stay
 * allowed: private CAs live there.
 */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  // BlockList parses every textual form and checks IPv4-mapped IPv6 (::ffff:7f00:1) against the IPv4 rules.
  return FORBIDDEN.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * [subnet, prefix length, why]. Every IPv4 rule also refuses its NAT64 embedding (RFC 6052
 * well-known prefix 64:ff9b::/96); BlockList itself matches IPv4-mapped IPv6 to the IPv4 rules.
 */
const RULES: Array<[string, number, string]> = [
  ['127.0.0.0', 8, 'loopback'],
  ['0.0.0.0', 8, 'unspecified / "this network"'],
  ['169.254.0.0', 16, 'link-local, AWS/GCP/OpenStack metadata 169.254.169.254'],
  ['168.63.129.16', 32, 'Azure platform service (WireServer)'],
  ['100.100.100.200', 32, 'Alibaba Cloud metadata'],
  ['::1', 128, 'IPv6 loopback'],
  ['::', 128, 'IPv6 unspecified'],
  ['fe80::', 10, 'IPv6 link-local'],
  ['fd00:ec2::254', 128, 'AWS metadata over IPv6'],
  ['fd00:ec2::23', 128, 'AWS DNS resolver over IPv6'],
];

const FORBIDDEN = new BlockList();
for (const [subnet, bits] of RULES) {
  if (isIP(subnet) === 6) FORBIDDEN.addSubnet(subnet, bits, 'ipv6');
  else {
    FORBIDDEN.addSubnet(subnet, bits, 'ipv4');
    FORBIDDEN.addSubnet(`64:ff9b::${subnet}`, 96 + bits, 'ipv6');
  }
}

const WHAT = 'loopback/link-local/metadata/unspecified address';

export class ForbiddenAddressError extends Error {
  override readonly name = 'ForbiddenAddressError';
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
    throw new ForbiddenAddressError(`refusing ${host}: ${WHAT} (see --allow-private-responders)`);
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
          `refusing ${hostname}: resolves to ${bad.address}, a ${WHAT} (see --allow-private-responders)`,
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
