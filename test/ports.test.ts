/**
 * The small pure pieces around the ports and the fetcher: staple and issuer-sibling names, the
 * SSRF address guard, the GET URL, Cache-Control max-age, and the OCSP request bytes (read back
 * by `openssl ocsp -req_text` and compared with the request openssl itself builds).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getUrlFor, maxAge } from '../lambda/adapters/ocsp-fetch.js';
import {
  assertHostAllowed,
  ForbiddenAddressError,
  guardedLookup,
  isForbiddenAddress,
} from '../lambda/adapters/ssrf-guard.js';
import { parseCertificates } from '../lambda/core/certificate.js';
import type { HashName } from '../lambda/core/der.js';
import { buildOcspRequest, certIdFor } from '../lambda/core/ocsp-request.js';
import {
  isCertificateKey,
  issuerSiblingKeyFor,
  refusedKeys,
  stapleKeyFor,
  unsafeKeyReason,
  type NamingOptions,
} from '../lambda/renew/ports.js';
import { VECTORS_DIR } from './helpers/vectors.js';

const CUSTOM: NamingOptions = { certExtensions: ['.cer'], stapleExtension: '.der' };

describe('staple and issuer-sibling names', () => {
  const stapleCases: Array<{ cert: string; naming?: NamingOptions; staple: string }> = [
    { cert: 'mail.example.com.pem', staple: 'mail.example.com.ocsp' },
    { cert: 'mail.example.com.crt', staple: 'mail.example.com.ocsp' },
    { cert: 'mail.example.com.cert', staple: 'mail.example.com.ocsp' },
    { cert: 'a/b/mail.example.com.pem', staple: 'a/b/mail.example.com.ocsp' },
    { cert: 'a/mail.example.com.cer', naming: CUSTOM, staple: 'a/mail.example.com.der' },
    {
      cert: 'www.chain.pem',
      naming: { certExtensions: ['.pem', '.chain.pem'], stapleExtension: '.ocsp' },
      staple: 'www.ocsp',
    },
  ];
  for (const { cert, naming, staple } of stapleCases) {
    it(`stapleKeyFor ${cert}${naming ? ' (custom naming)' : ''} → ${staple}`, () => {
      expect(stapleKeyFor(cert, naming)).toBe(staple);
    });
  }

  const certKeyCases: Array<{ key: string; naming?: NamingOptions; isCert: boolean }> = [
    { key: 'mail.example.com.pem', isCert: true },
    { key: 'mail.example.com.crt', isCert: true },
    { key: 'mail.example.com.cert', isCert: true },
    { key: 'a/b/mail.example.com.pem', isCert: true },
    { key: 'x.issuer.pem', isCert: false },
    { key: 'a/b/mail.example.com.issuer.pem', isCert: false },
    { key: 'mail.example.com.ocsp', isCert: false },
    { key: 'mail.example.com.key', isCert: false },
    { key: 'README', isCert: false },
    { key: 'mail.example.com.cer', naming: CUSTOM, isCert: true },
    { key: 'mail.example.com.pem', naming: CUSTOM, isCert: false },
  ];
  for (const { key, naming, isCert } of certKeyCases) {
    it(`isCertificateKey ${key}${naming ? ' (custom naming)' : ''} is ${isCert ? '' : 'not '}a certificate`, () => {
      expect(isCertificateKey(key, naming)).toBe(isCert);
    });
  }

  const siblingCases: Array<{ cert: string; naming?: NamingOptions; sibling: string }> = [
    { cert: 'a/b/mail.example.com.pem', sibling: 'a/b/mail.example.com.issuer.pem' },
    { cert: 'mail.example.com.crt', sibling: 'mail.example.com.issuer.pem' },
    { cert: 'a/mail.example.com.cer', naming: CUSTOM, sibling: 'a/mail.example.com.issuer.pem' },
  ];
  for (const { cert, naming, sibling } of siblingCases) {
    it(`issuerSiblingKeyFor ${cert}${naming ? ' (custom naming)' : ''} → ${sibling}, itself not a certificate`, () => {
      expect(issuerSiblingKeyFor(cert, naming)).toBe(sibling);
      expect(isCertificateKey(sibling, naming)).toBe(false);
    });
  }
});

describe('certificate keys from outside: unsafe names and staple collisions (issue 20)', () => {
  const unsafe: Array<[string, RegExp | undefined]> = [
    ['a/mail.example.com.pem', undefined],
    ['my site.pem', undefined],
    ['ünïcode/é.pem', undefined],
    ['a..b.pem', undefined],
    ['staples/a\n../private/server.key\nz.pem', /control character/],
    ['x\n/etc/nginx/nginx.conf\ny.pem', /control character/],
    ['a\x1b]0;owned\x07.pem', /control character/],
    ['tab\there.pem', /control character/],
    ['del\x7f.pem', /control character/],
    ['c1\u009b31m.pem', /control character/],
    ['/etc/ssl/a.pem', /starts with \//],
    ['../outside/x.pem', /\.\. component/],
    ['a/../../x.pem', /\.\. component/],
    ['a/./x.pem', /\. or \.\. component/],
    ['a//x.pem', /empty/],
  ];
  it.each(unsafe)('unsafeKeyReason(%j) is %s', (key, reason) => {
    const got = unsafeKeyReason(key);
    if (reason) expect(got).toMatch(reason);
    else expect(got).toBeUndefined();
  });

  it('refusedKeys: unsafe names refused, a.pem and a.crt (one staple a.ocsp) both refused, the rest kept', () => {
    const refused = refusedKeys([
      'a.pem',
      'a.crt',
      'b.pem',
      'dir/a.pem',
      'x\n../y.pem',
      'c.pem',
      'c.issuer.pem',
    ]);
    expect([...refused.keys()].sort()).toEqual(['a.crt', 'a.pem', 'x\n../y.pem']);
    expect(refused.get('a.pem')).toEqual({
      code: 'staple-collision',
      reason: 'refused: a.crt has the same staple a.ocsp; neither is renewed until one is renamed',
    });
    expect(refused.get('a.crt')?.reason).toContain('a.pem has the same staple a.ocsp');
    expect(refused.get('x\n../y.pem')?.code).toBe('unsafe-name');
  });

  it('refusedKeys follows the naming: a.cer and a.crt collide only where both are certificate extensions', () => {
    expect(refusedKeys(['a.cer', 'a.crt'], CUSTOM).size).toBe(0); // a.der and a.crt.der
    expect([
      ...refusedKeys(['a.cer', 'a.crt'], { ...CUSTOM, certExtensions: ['.cer', '.crt'] }).keys(),
    ]).toEqual(['a.cer', 'a.crt']);
  });
});

describe('isForbiddenAddress', () => {
  const cases: Array<{ address: string; forbidden: boolean; why: string }> = [
    { address: '127.0.0.1', forbidden: true, why: 'loopback' },
    { address: '127.9.9.9', forbidden: true, why: 'loopback (all of 127/8)' },
    { address: '::1', forbidden: true, why: 'IPv6 loopback' },
    { address: '0.0.0.0', forbidden: true, why: 'unspecified' },
    { address: '::', forbidden: true, why: 'IPv6 unspecified' },
    { address: '169.254.169.254', forbidden: true, why: 'link-local (cloud metadata)' },
    { address: '169.254.0.1', forbidden: true, why: 'link-local' },
    { address: 'fe80::1', forbidden: true, why: 'IPv6 link-local' },
    { address: 'FE80::1', forbidden: true, why: 'IPv6 link-local, upper case' },
    { address: 'febf::1', forbidden: true, why: 'IPv6 link-local, end of fe80::/10' },
    { address: '::ffff:127.0.0.1', forbidden: true, why: 'IPv4-mapped loopback' },
    { address: '::ffff:169.254.169.254', forbidden: true, why: 'IPv4-mapped metadata address' },
    { address: 'fd00:ec2::254', forbidden: true, why: 'AWS metadata over IPv6' },
    { address: 'FD00:EC2:0:0:0:0:0:254', forbidden: true, why: 'AWS metadata over IPv6, long form' },
    { address: 'fd00:ec2::23', forbidden: true, why: 'AWS DNS resolver over IPv6' },
    { address: '168.63.129.16', forbidden: true, why: 'Azure WireServer' },
    { address: '100.100.100.200', forbidden: true, why: 'Alibaba Cloud metadata' },
    { address: '::ffff:168.63.129.16', forbidden: true, why: 'IPv4-mapped Azure WireServer' },
    { address: '::ffff:6464:64c8', forbidden: true, why: 'IPv4-mapped Alibaba metadata, hex' },
    { address: '64:ff9b::127.0.0.1', forbidden: true, why: 'NAT64 loopback' },
    { address: '64:ff9b::7f00:1', forbidden: true, why: 'NAT64 loopback, hex' },
    { address: '64:ff9b::a9fe:a9fe', forbidden: true, why: 'NAT64 169.254.169.254' },
    { address: '64:ff9b::168.63.129.16', forbidden: true, why: 'NAT64 Azure WireServer' },
    { address: '64:ff9b::100.100.100.200', forbidden: true, why: 'NAT64 Alibaba metadata' },
    { address: '64:ff9b::0.0.0.0', forbidden: true, why: 'NAT64 unspecified' },
    { address: '64:ff9b::8.8.8.8', forbidden: false, why: 'NAT64 of a public address' },
    { address: '64:ff9b::10.0.0.1', forbidden: false, why: 'NAT64 of a private address' },
    { address: '64:ff9b:1::7f00:1', forbidden: false, why: 'not the /96 well-known prefix' },
    { address: 'fd00:ec2::1', forbidden: false, why: 'beside the AWS IPv6 metadata address' },
    { address: 'fd00::1', forbidden: false, why: 'IPv6 unique local: private CAs live there' },
    { address: '168.63.129.17', forbidden: false, why: 'beside the Azure address' },
    { address: '100.100.100.201', forbidden: false, why: 'beside the Alibaba address' },
    { address: '100.64.0.1', forbidden: false, why: 'carrier-grade NAT space stays allowed' },
    { address: '10.0.0.1', forbidden: false, why: 'private: private CAs live there' },
    { address: '172.16.0.1', forbidden: false, why: 'private' },
    { address: '192.168.1.1', forbidden: false, why: 'private' },
    { address: '8.8.8.8', forbidden: false, why: 'public' },
    { address: '128.0.0.1', forbidden: false, why: 'public, next to 127/8' },
    { address: '2001:db8::1', forbidden: false, why: 'IPv6 documentation range' },
    { address: 'fec0::1', forbidden: false, why: 'just past fe80::/10' },
  ];
  for (const { address, forbidden, why } of cases) {
    it(`${address} is ${forbidden ? 'forbidden' : 'allowed'} (${why})`, () => {
      expect(isForbiddenAddress(address)).toBe(forbidden);
    });
  }
});

describe('assertHostAllowed on URL hostnames', () => {
  const cases: Array<{ url: string; refused: boolean }> = [
    { url: 'http://127.0.0.1/', refused: true },
    { url: 'http://2130706433/', refused: true }, // WHATWG URL reads it as 127.0.0.1
    { url: 'http://[::1]:8080/', refused: true },
    { url: 'http://[fe80::1]/', refused: true },
    { url: 'http://169.254.169.254/latest/meta-data/', refused: true },
    { url: 'http://[fd00:ec2::254]/latest/meta-data/', refused: true },
    { url: 'http://168.63.129.16/machine', refused: true },
    { url: 'http://100.100.100.200/latest/meta-data/', refused: true },
    { url: 'http://[64:ff9b::169.254.169.254]/', refused: true }, // WHATWG URL: [64:ff9b::a9fe:a9fe]
    { url: 'http://[64:ff9b::8.8.8.8]/', refused: false },
    { url: 'http://10.0.0.1/', refused: false },
    { url: 'http://ocsp.example.com/', refused: false }, // names are checked after resolution
  ];
  for (const { url, refused } of cases) {
    it(`${url} is ${refused ? 'refused' : 'let through'}`, () => {
      const check = () => assertHostAllowed(new URL(url).hostname);
      if (refused) expect(check).toThrow(ForbiddenAddressError);
      else expect(check).not.toThrow();
    });
  }

  // WHATWG URL prints IPv4-mapped IPv6 literals in hex: [::ffff:127.0.0.1] becomes [::ffff:7f00:1],
  // which the guard must recognise too (regression: only the dotted form once was).
  const mapped = [
    { url: 'http://[::ffff:127.0.0.1]/', hostname: '[::ffff:7f00:1]' },
    { url: 'http://[::ffff:169.254.169.254]/', hostname: '[::ffff:a9fe:a9fe]' },
  ];
  for (const { url, hostname } of mapped) {
    it(`${url} has the hostname ${hostname}`, () => {
      expect(new URL(url).hostname).toBe(hostname);
    });
    it(`${url} is refused`, () => {
      expect(() => assertHostAllowed(new URL(url).hostname)).toThrow(ForbiddenAddressError);
    });
  }
});

// The check that counts is on the address connected to: guardedLookup is what http.request resolves
// through, and dns.lookup of an address literal returns it, so these need no DNS.
describe('guardedLookup refuses the resolved address', () => {
  const lookup = (host: string) =>
    new Promise<unknown>((resolve) =>
      guardedLookup(host, { all: true }, (err, addresses) => resolve(err ?? addresses)),
    );

  it.each(['fd00:ec2::254', '168.63.129.16', '100.100.100.200', '64:ff9b::a9fe:a9fe', '::ffff:a9fe:a9fe'])(
    '%s',
    async (address) => {
      const result = await lookup(address);
      expect(result).toBeInstanceOf(ForbiddenAddressError);
      expect((result as Error).message).toContain(`resolves to ${address}, a loopback/link-local/metadata`);
    },
  );

  it('lets a NAT64 form of a public address through', async () => {
    expect(await lookup('64:ff9b::808:808')).toEqual([{ address: '64:ff9b::808:808', family: 6 }]);
  });
});

describe('getUrlFor', () => {
  const der = Buffer.from([0xfb, 0xff]); // base64 "+/8="
  const cases = [
    {
      name: 'adds a slash to a bare responder URL',
      url: 'http://ocsp.example.com',
      want: 'http://ocsp.example.com/%2B%2F8%3D',
    },
    {
      name: 'keeps a single trailing slash',
      url: 'http://ocsp.example.com/',
      want: 'http://ocsp.example.com/%2B%2F8%3D',
    },
    {
      name: 'appends after a path',
      url: 'http://ocsp.example.com/ocsp',
      want: 'http://ocsp.example.com/ocsp/%2B%2F8%3D',
    },
    {
      name: 'keeps a path with a trailing slash',
      url: 'http://x.test/ca/',
      want: 'http://x.test/ca/%2B%2F8%3D',
    },
  ];
  for (const { name, url, want } of cases) {
    it(`${name}, url-encoding + / = (${url})`, () => {
      expect(getUrlFor(url, der)).toBe(want);
    });
  }

  it('round-trips a real request: the last segment decodes back to the DER', () => {
    const request = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 251) % 256));
    const url = getUrlFor('http://ocsp.example.com', request);
    const segment = url.slice('http://ocsp.example.com/'.length);
    expect(segment).not.toMatch(/[+/=]/);
    expect(Buffer.from(decodeURIComponent(segment), 'base64')).toEqual(request);
  });
});

describe('maxAge', () => {
  const cases: Array<{ header: string | undefined; seconds: number | undefined }> = [
    { header: 'max-age=3600, public', seconds: 3600 },
    { header: 'public, max-age=600', seconds: 600 },
    { header: 'public,max-age=600,must-revalidate', seconds: 600 },
    { header: 'MAX-AGE=60', seconds: 60 },
    { header: 'max-age="120"', seconds: 120 },
    { header: 'max-age=0', seconds: 0 },
    { header: 'no-cache', seconds: undefined },
    { header: 's-maxage=100', seconds: undefined },
    { header: '', seconds: undefined },
    { header: undefined, seconds: undefined },
  ];
  for (const { header, seconds } of cases) {
    it(`${JSON.stringify(header)} → ${seconds}`, () => {
      expect(maxAge(header)).toBe(seconds);
    });
  }
});

describe('buildOcspRequest, read back by openssl ocsp', () => {
  const pemPath = (file: string) => path.join(VECTORS_DIR, 'openssl-ocsp-tests', file);
  let dir = '';

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-req-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const reqText = (der: Buffer, name: string) => {
    const file = path.join(dir, `${name}.der`);
    writeFileSync(file, der);
    return openssl('ocsp', '-reqin', file, '-req_text');
  };

  // ND3_Cert_EE's serial has its high bit set (INTEGER content 00 A7 0D …): the 00 must survive.
  const cases: Array<{ leaf: string; issuer: string; serial: string; hash: HashName }> = [
    { leaf: 'D2_Cert_ICA.pem', issuer: 'D2_Issuer_Root.pem', serial: '0400000000012F4EE14710', hash: 'sha1' },
    {
      leaf: 'D2_Cert_ICA.pem',
      issuer: 'D2_Issuer_Root.pem',
      serial: '0400000000012F4EE14710',
      hash: 'sha256',
    },
    {
      leaf: 'ND3_Cert_EE.pem',
      issuer: 'ND3_Issuer_Root.pem',
      serial: 'A70D6C959E8D7E414DBF0399EBE409AB',
      hash: 'sha1',
    },
  ];
  for (const { leaf, issuer, serial, hash } of cases) {
    it(`${leaf} with ${hash}: shows the serial and hash, and equals the request openssl builds`, () => {
      const cert = parseCertificates(readFileSync(pemPath(leaf)))[0]!;
      const ca = parseCertificates(readFileSync(pemPath(issuer)))[0]!;
      const ours = buildOcspRequest(certIdFor(cert, ca, hash));
      const text = reqText(ours, `${leaf}-${hash}`);
      expect(text).toContain(`Hash Algorithm: ${hash}`);
      expect(text).toContain(`Serial Number: ${serial}`);
      expect(text).not.toContain('OCSP Nonce');

      const theirsFile = path.join(dir, `${leaf}-${hash}.openssl.der`);
      openssl(
        'ocsp',
        `-${hash}`,
        '-issuer',
        pemPath(issuer),
        '-cert',
        pemPath(leaf),
        '-no_nonce',
        '-reqout',
        theirsFile,
      );
      expect(ours.toString('hex')).toBe(readFileSync(theirsFile).toString('hex'));
    });
  }

  it('with a nonce: shows the OCSP Nonce extension carrying it as an OCTET STRING', () => {
    const cert = parseCertificates(readFileSync(pemPath('D2_Cert_ICA.pem')))[0]!;
    const ca = parseCertificates(readFileSync(pemPath('D2_Issuer_Root.pem')))[0]!;
    const nonce = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const text = reqText(buildOcspRequest(certIdFor(cert, ca), { nonce }), 'nonce');
    expect(text).toContain('OCSP Nonce');
    expect(text.replace(/\s/g, '')).toContain(`OCSPNonce:0410${nonce.toString('hex').toUpperCase()}`);
    expect(text).toContain('Hash Algorithm: sha1');
  });
});
