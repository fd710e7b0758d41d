/**
 * Certificates as the renewer reads them: PEM bundles (keys in them ignored and never kept), DER,
 * caIssuers downloads (DER, PEM, PKCS#7 certs-only), the facts openssl also prints, and the choice
 * of an issuer. Inputs are the shared OCSP vectors' certificates; openssl is the reference.
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Certificate,
  clearCertificateCache,
  parseCertificates,
  parseIssuerDownload,
} from '../lambda/core/certificate.js';
import { derElement, pemBlocks } from '../lambda/core/der.js';
import { CertificateParseError, ResponseParseError } from '../lambda/core/errors.js';
import { parseOcspResponse } from '../lambda/core/ocsp-response.js';
import { pickIssuer } from '../lambda/renew/issuer.js';
import { VECTORS_DIR } from './helpers/vectors.js';

const vectorsDir = VECTORS_DIR;

const vectorPath = (file: string) => path.join(vectorsDir, file);
const read = (file: string) => readFileSync(vectorPath(file));
const first = (file: string): Certificate => parseCertificates(read(file))[0]!;
/** openssl's stdout, its stderr swallowed ("No extensions in certificate" and the like). */
const openssl = (...args: string[]): Buffer =>
  execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 });
const derOf = (file: string) => openssl('x509', '-in', vectorPath(file), '-outform', 'DER');
const crlf = (text: string) => text.replace(/\r?\n/g, '\r\n');
/** A PEM certificate cut to its first five base64 lines, BEGIN and END lines kept. */
const truncated = (pem: string) => {
  const lines = pem.trim().split('\n');
  return [...lines.slice(0, 6), lines.at(-1)].join('\n') + '\n';
};

describe('parseCertificates', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const keyDer = privateKey.export({ type: 'pkcs8', format: 'der' });
  const keyScalar = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const leafFile = 'openssl-ocsp-tests/ND1_Cert_EE.pem';
  const issuerFile = 'openssl-ocsp-tests/ND1_Issuer_ICA.pem';
  const bundle = Buffer.from(
    `  \r\n\t${crlf(read(leafFile).toString())}\r\n${crlf(keyPem)}${crlf(read(issuerFile).toString())}\r\n  \r\n`,
  );

  it('sha256 is the SHA-256 of the DER, whether parsed through the cache (hash shared) or constructed directly', () => {
    const der = derOf(leafFile);
    const expected = createHash('sha256').update(der).digest('hex');
    clearCertificateCache();
    expect(parseCertificates(der)[0]!.sha256).toBe(expected);
    expect(new Certificate(der).sha256).toBe(expected);
  });

  it('a CRLF bundle with whitespace and a PRIVATE KEY between two certificates yields the two, in order', () => {
    const certs = parseCertificates(bundle);
    expect(certs.map((c) => c.der)).toEqual([derOf(leafFile), derOf(issuerFile)]);
    expect(certs.map((c) => c.serialHex)).toEqual([
      '22E1332220A048DF29B2BF9A31C29B07',
      '11A3B4D0EC8DB77F9DA0CD5D2D512F42',
    ]);
  });

  it('keeps no byte of the private key from that bundle', () => {
    const certs = parseCertificates(bundle);
    const allDer = Buffer.concat(certs.map((c) => c.der));
    expect(allDer.includes(keyDer)).toBe(false);
    expect(allDer.includes(keyScalar)).toBe(false);
    for (const cert of certs) {
      for (const [field, value] of Object.entries(cert)) {
        if (Buffer.isBuffer(value)) expect(value.includes(keyScalar), field).toBe(false);
      }
      const facts = JSON.stringify({
        serialHex: cert.serialHex,
        subject: cert.subject,
        issuer: cert.issuer,
        ocspUrls: cert.ocspUrls,
        caIssuersUrls: cert.caIssuersUrls,
        der: cert.der.toString('base64'),
        spki: cert.spkiDer.toString('base64'),
      });
      expect(facts).not.toContain(keyScalar.toString('base64'));
      expect(facts).not.toContain(keyScalar.toString('hex'));
      expect(facts).not.toContain(keyDer.toString('base64').slice(-40));
    }
  });

  describe('a PEM certificate after `openssl x509 -text` output longer than 4 KiB', () => {
    const file = 'issuers/quovadis-global-ssl-ica-g3.pem';
    const withText = () => openssl('x509', '-in', vectorPath(file), '-text');

    it('has its BEGIN line past byte 4096', () => {
      expect(withText().indexOf('-----BEGIN CERTIFICATE-----')).toBeGreaterThan(4096);
    });

    // Regression: PEM detection once looked at the first 4096 bytes only.
    it('is read', () => {
      expect(parseCertificates(withText()).map((c) => c.der)).toEqual([derOf(file)]);
    });
  });

  it('reads a DER certificate', () => {
    const certs = parseCertificates(derOf('openssl-ocsp-tests/D1_Cert_EE.pem'));
    expect(certs).toHaveLength(1);
    expect(certs[0]!.serialHex).toBe('1121BCBF1E08CC02E792A406D3902F33ED9B');
  });

  const refusals: Array<{ name: string; bytes: Buffer; error: RegExp }> = [
    {
      name: 'a PEM file with only a private key',
      bytes: Buffer.from(keyPem),
      error: /no CERTIFICATE block found/,
    },
    {
      name: 'a text file',
      bytes: Buffer.from('not a certificate\n'),
      error: /^not a certificate: DER decoding failed at byte 0: an element of 111 bytes runs past the end/,
    },
    {
      name: 'an empty file',
      bytes: Buffer.alloc(0),
      error: /^not a certificate: DER decoding failed at byte 0: the data is empty$/,
    },
    {
      // asn1js says "Constructed encoding used for primitive type", with no position.
      name: 'DER with a constructed INTEGER inside a SEQUENCE',
      bytes: Buffer.from('30083006300422020000', 'hex'),
      error:
        /^not a certificate: DER decoding failed at byte 6: a constructed encoding where DER requires a primitive one$/,
    },
    {
      name: 'well-formed DER that is no certificate',
      bytes: Buffer.from('3003020100', 'hex'),
      error: /^not a certificate: well-formed DER, but not the structure of an X\.509 certificate$/,
    },
    {
      name: 'a bundle whose second CERTIFICATE block is corrupt',
      bytes: Buffer.from(read(leafFile).toString() + truncated(read(issuerFile).toString())),
      error: /certificate block 2 does not parse: not a certificate: DER decoding failed at byte \d+/,
    },
  ];
  for (const { name, bytes, error } of refusals) {
    it(`refuses ${name}, saying why`, () => {
      expect(() => parseCertificates(bytes)).toThrow(error);
    });
  }
});

describe('certificate facts agree with openssl x509', () => {
  const pemFiles = ['openssl-ocsp-tests', 'go-x-crypto', 'aws-lc-s2n', 'issuers'].flatMap((dir) =>
    readdirSync(vectorPath(dir))
      .filter((f) => f.endsWith('.pem'))
      .sort()
      .map((f) => `${dir}/${f}`),
  );

  it('finds the vectors’ PEM files', () => {
    expect(pemFiles.length).toBeGreaterThanOrEqual(40);
  });

  for (const file of pemFiles) {
    it(`${file}: serial, notAfter, OCSP and caIssuers URLs, certificate count`, () => {
      const out = openssl(
        'x509',
        '-noout',
        '-serial',
        '-enddate',
        '-dateopt',
        'iso_8601',
        '-ocsp_uri',
        '-ext',
        'authorityInfoAccess',
        '-in',
        vectorPath(file),
      )
        .toString()
        .split('\n');
      const serial = out.find((l) => l.startsWith('serial='))!.slice('serial='.length);
      const notAfter = out.find((l) => l.startsWith('notAfter='))!.slice('notAfter='.length);
      const ocspUrls = out.filter((l) => /^[a-z]+:\/\//i.test(l));
      const caIssuers = out.flatMap((l) => /^\s+CA Issuers - URI:(.*)$/.exec(l)?.[1] ?? []);

      const certs = parseCertificates(read(file));
      const cert = certs[0]!;
      expect(certs).toHaveLength(read(file).toString().split('-----BEGIN CERTIFICATE-----').length - 1);
      expect(cert.serialHex).toBe(serial);
      expect(cert.notAfter.getTime()).toBe(Date.parse(notAfter.replace(' ', 'T')));
      expect(cert.ocspUrls).toEqual(ocspUrls);
      expect(cert.caIssuersUrls).toEqual(caIssuers);
    });
  }
});

describe('parseIssuerDownload', () => {
  const single = 'openssl-ocsp-tests/ND1_Issuer_ICA.pem';
  const pair = 'openssl-ocsp-tests/ND1_Issuer_ICA-Cross.pem'; // the ICA and its cross-signed parent
  const pairDer = () => openssl('crl2pkcs7', '-nocrl', '-certfile', vectorPath(pair), '-outform', 'DER');
  const pairPem = () => openssl('crl2pkcs7', '-nocrl', '-certfile', vectorPath(pair));
  /** The DER of each CERTIFICATE block of the pair file, decoded here, not by the code under test. */
  const pairCertsDer = () =>
    [
      ...read(pair)
        .toString()
        .matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g),
    ].map((m) => Buffer.from(m[1]!.replace(/\s/g, ''), 'base64'));

  const cases: Array<{ name: string; bytes: () => Buffer; want: () => Buffer[] }> = [
    { name: 'a DER certificate (.cer)', bytes: () => derOf(single), want: () => [derOf(single)] },
    { name: 'a PEM certificate', bytes: () => read(single), want: () => [derOf(single)] },
    { name: 'a DER PKCS#7 certs-only (.p7c) with two certificates', bytes: pairDer, want: pairCertsDer },
    { name: 'a PEM PKCS#7 certs-only with two certificates', bytes: pairPem, want: pairCertsDer },
  ];
  for (const { name, bytes, want } of cases) {
    it(`reads ${name}`, () => {
      expect(parseIssuerDownload(bytes()).map((c) => c.der)).toEqual(want());
    });
  }

  it('the PKCS#7 holds the ICA first, then its parent', () => {
    const certs = parseIssuerDownload(pairDer());
    expect(certs).toHaveLength(2);
    expect(certs[0]!.subject).toMatch(/^CN=COMODO Extended Validation Secure Server CA,/);
    expect(certs[1]!.subject).toMatch(/^CN=COMODO Certification Authority,/);
  });

  it('refuses bytes that are neither a certificate nor a PKCS#7', () => {
    expect(() => parseIssuerDownload(Buffer.from('<html>not found</html>'))).toThrow(
      /not a certificate: DER decoding failed at byte 0/,
    );
  });
});

describe('pickIssuer', () => {
  const families = [
    { leaf: 'ND1_Cert_EE.pem', issuer: 'ND1_Issuer_ICA.pem' },
    { leaf: 'ND2_Cert_ICA.pem', issuer: 'ND2_Issuer_Root.pem' },
    { leaf: 'ND3_Cert_EE.pem', issuer: 'ND3_Issuer_Root.pem' },
    { leaf: 'D1_Cert_EE.pem', issuer: 'D1_Issuer_ICA.pem' },
    { leaf: 'D2_Cert_ICA.pem', issuer: 'D2_Issuer_Root.pem' },
    { leaf: 'D3_Cert_EE.pem', issuer: 'D3_Issuer_Root.pem' },
  ];
  const cert = (file: string) => first(`openssl-ocsp-tests/${file}`);

  it('picks ND1_Issuer_ICA for ND1_Cert_EE among the broken variants and unrelated CAs', async () => {
    const leaf = cert('ND1_Cert_EE.pem');
    const right = cert('ND1_Issuer_ICA.pem');
    const pool = [
      cert('WKIC_ND1_Issuer_ICA.pem'),
      cert('D1_Issuer_ICA.pem'),
      cert('ND2_Issuer_Root.pem'),
      right,
    ];
    expect(await pickIssuer(leaf, pool)).toBe(right);
  });

  it('never picks the leaf itself', async () => {
    const root = cert('ND3_Issuer_Root.pem'); // self-signed: its own issuer by name and key
    expect(await pickIssuer(root, [root])).toBeUndefined();
  });

  for (const { leaf, issuer } of families) {
    it(`${leaf}: picks ${issuer}`, async () => {
      const right = cert(issuer);
      expect(await pickIssuer(cert(leaf), [right])).toBe(right);
    });
    it(`${leaf}: refuses WKIC_${issuer} (wrong key: the leaf signature does not verify)`, async () => {
      expect(await pickIssuer(cert(leaf), [cert(`WKIC_${issuer}`)])).toBeUndefined();
    });
    it(`${leaf}: takes ISIC_${issuer} (right name and key; only its own signature, by its parent, is broken)`, async () => {
      const variant = cert(`ISIC_${issuer}`);
      expect(await pickIssuer(cert(leaf), [variant])).toBe(variant);
    });
  }

  // WSNIC has the right key but a wrong subject name, so it is not the issuer (RFC 5280 §6.1.3 name
  // chaining), even where the leaf's AKI matches its key identifier (regression: it once was taken).
  for (const { leaf, issuer } of families) {
    it(`${leaf}: refuses WSNIC_${issuer} (right key, wrong subject name)`, async () => {
      expect(await pickIssuer(cert(leaf), [cert(`WSNIC_${issuer}`)])).toBeUndefined();
    });
  }

  it('D1_Cert_EE: prefers D1_Issuer_ICA over WSNIC_D1_Issuer_ICA offered first', async () => {
    // Picking the misnamed variant makes the delegated D1 response fail validation.
    const right = cert('D1_Issuer_ICA.pem');
    expect(await pickIssuer(cert('D1_Cert_EE.pem'), [cert('WSNIC_D1_Issuer_ICA.pem'), right])).toBe(right);
  });
});

describe('PEM scanning in linear time (issue 20)', () => {
  /** The quadratic scan it replaced, as the reference on small inputs. */
  const OLD_PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  const oldBlocks = (text: string) =>
    [...text.matchAll(OLD_PEM_BLOCK)].map((m) => ({
      label: m[1],
      der: Buffer.from((m[2] ?? '').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'),
    }));
  const pem = read('openssl-ocsp-tests/ND1_Issuer_ICA.pem').toString('latin1');
  const key = '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';
  const small: Array<[string, string]> = [
    ['a bundle with a key between certificates', pem + key + pem],
    ['CRLF line ends', crlf(pem + pem)],
    ['a BEGIN without its END before a whole block', '-----BEGIN CERTIFICATE-----\nAAAA\n' + key + pem],
    [
      'an END of another label inside a block',
      pem.replace('\n-----END', '\n-----END X509 CRL-----\n-----END'),
    ],
    ['a block inside another label’s block', '-----BEGIN FOO-----\n' + pem + '-----END FOO-----\n' + pem],
    ['no PEM at all', 'hello -----BEGIN lower----- -----END lower-----'],
  ];
  it.each(small)('finds the blocks the regex found: %s', (_name, text) => {
    expect(pemBlocks(text)).toEqual(oldBlocks(text));
  });

  const MiB = 1024 * 1024;
  // Repeated BEGINs without an END took the regex 27 s at 1 MiB (1.9 s at 256 KiB); linear, each
  // takes milliseconds. The bound is generous (a loaded machine), far below the quadratic time.
  const adversarial: Array<[string, string]> = [
    ['1 MiB of -----BEGIN A-----', '-----BEGIN A-----'.repeat(Math.ceil(MiB / 17)).slice(0, MiB)],
    [
      '1 MiB of BEGINs, each with its own label',
      Array.from({ length: 60_000 }, (_, i) => `-----BEGIN L${i}-----`)
        .join('')
        .slice(0, MiB),
    ],
    ['1 MiB of dashes', '-'.repeat(MiB)],
    ['a 1 MiB label with no closing dashes', `-----BEGIN ${'A'.repeat(MiB)}`],
  ];
  it.each(adversarial)(
    'scans %s in linear time (under 3 s; the regex took 27 s), and parseCertificates refuses it cleanly',
    (_name, text) => {
      const started = performance.now();
      expect(pemBlocks(text)).toEqual([]);
      expect(() => parseCertificates(Buffer.from(text, 'latin1'))).toThrow(
        /^(no CERTIFICATE block found|not a certificate: DER decoding failed)/,
      );
      expect(performance.now() - started).toBeLessThan(3_000);
    },
  );
});

describe('hostile DER: nesting, indefinite and oversized lengths (issue 20, keep)', () => {
  /** `depth` SEQUENCEs, each holding the next, around a NULL. */
  const nested = (depth: number): Buffer => {
    let inner: Buffer = Buffer.from([0x05, 0x00]);
    for (let i = 0; i < depth; i++) inner = derElement(0x30, inner);
    return inner;
  };
  const cases: Array<[string, Buffer]> = [
    ['50 000 nested SEQUENCEs', nested(50_000)],
    ['an indefinite length (BER)', Buffer.from('308005000000', 'hex')],
    ['a length of 2^31 - 1 bytes in 8 bytes of data', Buffer.from('30847fffffff0500', 'hex')],
    ['a length in 9 octets', Buffer.from('3089000000000000000205000000', 'hex')],
  ];
  it.each(cases)(
    '%s: refused as no certificate and no OCSP response, with their own errors',
    (_name, der) => {
      const started = performance.now();
      expect(() => parseCertificates(der)).toThrow(CertificateParseError);
      expect(() => parseOcspResponse(der)).toThrow(ResponseParseError);
      for (const parse of [() => parseCertificates(der), () => parseOcspResponse(der)]) {
        try {
          parse();
        } catch (err) {
          expect((err as Error).message).not.toMatch(/Maximum call stack|RangeError|Invalid array length/);
        }
      }
      expect(performance.now() - started).toBeLessThan(3_000);
    },
  );
});
