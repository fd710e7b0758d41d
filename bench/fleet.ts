/**
 * A synthetic fleet for the benchmarks, built in-process with node:crypto in a second or two: one
 * issuer CA, one delegated OCSP responder certificate (EKU OCSPSigning, id-pkix-ocsp-nocheck), N
 * distinct leaf certificates (distinct serials and names, so distinct bytes) and, for each leaf, a
 * distinct "good" OCSP response signed by the responder.
 *
 * Keys are ECDSA P-256: signing 10 000 responses with RSA-2048 at bench start would take ~15 s on
 * a loaded 2-core machine. Leaves share one key pair (their bytes still differ). The DER is
 * written by hand with the small encoder below; `parseCertificates` / `validateResponse` accept
 * it, so a mistake here fails the bench loudly, never silently.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

// --- a minimal DER encoder --------------------------------------------------------------------------
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...parts: Buffer[]) => tlv(0x30, ...parts);
const set = (...parts: Buffer[]) => tlv(0x31, ...parts);
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);
const int = (b: Buffer) => tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const explicit = (n: number, ...parts: Buffer[]) => tlv(0xa0 + n, ...parts);
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const v of rest) {
    const chunk = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) chunk.unshift((x & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
const genTime = (d: Date) =>
  tlv(
    0x18,
    Buffer.from(
      d
        .toISOString()
        .replace(/[-:T]/g, '')
        .replace(/\.\d{3}Z$/, 'Z'),
    ),
  );
const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn)))));
const extension = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest();

interface KeyPair {
  privateKey: KeyObject;
  spki: Buffer;
  /** The subjectPublicKey BIT STRING's contents (the EC point), what key ids hash. */
  point: Buffer;
}
function keyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return { privateKey, spki, point: spki.subarray(spki.length - 65) };
}

function certificate(opts: {
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  key: KeyPair;
  signer: KeyObject;
  /** Default ecdsa-with-SHA256. */
  signatureAlgorithm?: Buffer;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}): Buffer {
  const utc = (d: Date) =>
    tlv(
      0x17,
      Buffer.from(
        d
          .toISOString()
          .slice(2)
          .replace(/[-:T]/g, '')
          .replace(/\.\d{3}Z$/, 'Z'),
      ),
    );
  const tbs = seq(
    explicit(0, int(Buffer.from([2]))),
    int(opts.serial),
    opts.signatureAlgorithm ?? ECDSA_SHA256,
    opts.issuer,
    seq(utc(opts.notBefore), utc(opts.notAfter)),
    opts.subject,
    opts.key.spki,
    explicit(3, seq(...opts.extensions)),
  );
  return seq(tbs, opts.signatureAlgorithm ?? ECDSA_SHA256, bits(sign('sha256', tbs, opts.signer)));
}

export interface Fleet {
  issuerDer: Buffer;
  issuerPem: string;
  responderDer: Buffer;
  /** Leaf i: DER and a PEM bundle (leaf then issuer, as a fullchain file). */
  leaves: Array<{ der: Buffer; bundle: string; serialHex: string }>;
  /** Response i answers for leaf i: good, thisUpdate = now - 1 h, nextUpdate = now + 7 days. */
  responses: Buffer[];
  /** Looks up the response for an OCSP request (finds the 16-byte serial in the request DER). */
  responseFor(requestDer: Buffer): Buffer | undefined;
}

export const toPem = (der: Buffer, label = 'CERTIFICATE') =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .replace(/.{64}/g, '$&\n')
    .replace(/\n?$/, '\n')}-----END ${label}-----\n`;

/**
 * Builds the fleet. `ocspUrl` goes into each leaf's AIA. `now` is the instant responses and
 * certificates are valid around. `seed` makes serials distinct between fleets built in one process.
 */
export function makeFleet(n: number, ocspUrl: string, now = new Date(), seed = 0): Fleet {
  const DAY = 86_400_000;
  const issuerKey = keyPair();
  const responderKey = keyPair();
  const leafKey = keyPair();
  const issuerName = name('ocsp-renewer bench CA');
  const ski = sha1(issuerKey.point);
  const aki = extension('2.5.29.35', false, seq(tlv(0x80, ski)));
  const from = new Date(now.getTime() - DAY);
  const until = new Date(now.getTime() + 365 * DAY);

  const issuerDer = certificate({
    serial: Buffer.from([1]),
    issuer: issuerName,
    subject: issuerName,
    key: issuerKey,
    signer: issuerKey.privateKey,
    notBefore: new Date(now.getTime() - 2 * DAY),
    notAfter: new Date(now.getTime() + 3650 * DAY),
    extensions: [
      extension('2.5.29.19', true, seq(bool(true))),
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x01, 0x06]))), // keyCertSign, cRLSign
      extension('2.5.29.14', false, octets(ski)),
    ],
  });
  const responderDer = certificate({
    serial: Buffer.from([2]),
    issuer: issuerName,
    subject: name('ocsp-renewer bench OCSP responder'),
    key: responderKey,
    signer: issuerKey.privateKey,
    notBefore: from,
    notAfter: until,
    extensions: [
      extension('2.5.29.19', true, seq()),
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80]))), // digitalSignature
      extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.9'))), // OCSPSigning
      extension('1.3.6.1.5.5.7.48.1.5', false, tlv(0x05, Buffer.alloc(0))), // ocsp-nocheck
      aki,
    ],
  });
  const issuerPem = toPem(issuerDer);
  const aia = extension(
    '1.3.6.1.5.5.7.1.1',
    false,
    seq(seq(oid('1.3.6.1.5.5.7.48.1'), tlv(0x86, Buffer.from(ocspUrl)))),
  );
  const certIdPrefix = Buffer.concat([
    seq(oid('1.3.14.3.2.26'), tlv(0x05, Buffer.alloc(0))),
    octets(sha1(issuerName)),
    octets(sha1(issuerKey.point)),
  ]);
  const responderId = explicit(2, octets(sha1(responderKey.point)));
  const thisUpdate = genTime(new Date(Math.floor(now.getTime() / 1000) * 1000 - 3_600_000));
  const nextUpdate = explicit(0, genTime(new Date(Math.floor(now.getTime() / 1000) * 1000 + 7 * DAY)));
  const certs = explicit(0, seq(responderDer));
  const responderPrivate = responderKey.privateKey;

  const leaves: Fleet['leaves'] = [];
  const responses: Buffer[] = [];
  const bySerial = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    // 16 bytes, top bit clear and first byte non-zero: a fixed-length positive INTEGER.
    const serial = createHash('sha256').update(`bench ${seed} ${i}`).digest().subarray(0, 16);
    serial[0] = (serial[0]! & 0x7f) | 0x10;
    const der = certificate({
      serial,
      issuer: issuerName,
      subject: name(`leaf-${i}.bench.test`),
      key: leafKey,
      signer: issuerKey.privateKey,
      notBefore: from,
      notAfter: until,
      extensions: [
        extension('2.5.29.19', true, seq()),
        extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80]))),
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
        extension('2.5.29.17', false, seq(tlv(0x82, Buffer.from(`leaf-${i}.bench.test`)))),
        aki,
        aia,
      ],
    });
    const serialHex = serial.toString('hex');
    leaves.push({ der, bundle: toPem(der) + issuerPem, serialHex });
    bySerial.set(serialHex, i);

    const single = seq(seq(certIdPrefix, int(serial)), tlv(0x80, Buffer.alloc(0)), thisUpdate, nextUpdate);
    // ResponseData: version v1 (default, omitted), responderID byKey, producedAt, responses.
    const tbs = seq(responderId, thisUpdate, seq(single));
    const basic = seq(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, responderPrivate)), certs);
    responses.push(
      seq(tlv(0x0a, Buffer.from([0])), explicit(0, seq(oid('1.3.6.1.5.5.7.48.1.1'), octets(basic)))),
    );
  }

  const responseFor = responderFor(new Map([...bySerial].map(([serial, i]) => [serial, responses[i]!])));
  return { issuerDer, issuerPem, responderDer, leaves, responses, responseFor };
}

/**
 * An instant responder's lookup: finds the 16-byte serial of a request's CertID (`02 10 <16
 * bytes>`, scanning from the end: a nonce extension, if any, comes after it) in `bySerial`.
 */
export function responderFor(bySerial: Map<string, Buffer>): (requestDer: Buffer) => Buffer | undefined {
  return (requestDer) => {
    for (let at = requestDer.length - 18; at >= 0; at--) {
      if (requestDer[at] !== 0x02 || requestDer[at + 1] !== 0x10) continue;
      const der = bySerial.get(requestDer.subarray(at + 2, at + 18).toString('hex'));
      if (der) return der;
    }
    return undefined;
  };
}

/** The TLVs inside a constructed DER value (no checks: input here is our own or openssl's). */
function children(der: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const header = (at: number) => {
    const first = der[at + 1]!;
    if (first < 0x80) return { start: at + 2, length: first };
    let length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + der[at + 2 + i]!;
    return { start: at + 2 + (first & 0x7f), length };
  };
  const outer = header(0);
  for (let at = outer.start; at < outer.start + outer.length;) {
    const { start, length } = header(at);
    out.push(der.subarray(at, start + length));
    at = start + length;
  }
  return out;
}

/**
 * N distinct leaves (distinct serials and names, one shared ECDSA P-256 key) issued by an existing
 * RSA CA, e.g. the intermediate of test/helpers/pki.ts, so an `openssl ocsp` responder for that CA
 * can answer for them once their lines are in its index.txt (`indexLines`).
 */
export function makeLeavesUnder(
  n: number,
  ocspUrl: string,
  issuer: { pem: string; privateKey: KeyObject },
  now = new Date(),
): { leaves: Array<{ der: Buffer; bundle: string; serialHex: string }>; indexLines: string } {
  const DAY = 86_400_000;
  const issuerDer = Buffer.from(issuer.pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const tbs = children(children(issuerDer)[0]!);
  const [subject, spki] = [tbs[5]!, tbs[6]!]; // after version, serial, signature, issuer, validity
  const keyBits = children(spki)[1]!; // BIT STRING: 03 len 00 <key>
  const bitStringBody = keyBits.subarray(headerLength(keyBits) + 1); // after the unused-bits byte
  const aki = extension('2.5.29.35', false, seq(tlv(0x80, sha1(bitStringBody))));
  const aia = extension(
    '1.3.6.1.5.5.7.1.1',
    false,
    seq(seq(oid('1.3.6.1.5.5.7.48.1'), tlv(0x86, Buffer.from(ocspUrl)))),
  );
  const leafKey = keyPair();
  const from = new Date(now.getTime() - DAY);
  const until = new Date(now.getTime() + 365 * DAY);
  const RSA_SHA256 = seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0)));
  const expiry = until
    .toISOString()
    .slice(2)
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  const leaves: Array<{ der: Buffer; bundle: string; serialHex: string }> = [];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const serial = createHash('sha256').update(`side-by-side ${now.getTime()} ${i}`).digest().subarray(0, 16);
    serial[0] = (serial[0]! & 0x7f) | 0x10;
    const cn = `leaf-${i}.bench.test`;
    const der = certificate({
      serial,
      issuer: subject,
      subject: name(cn),
      key: leafKey,
      signer: issuer.privateKey,
      signatureAlgorithm: RSA_SHA256,
      notBefore: from,
      notAfter: until,
      extensions: [
        extension('2.5.29.19', true, seq()),
        extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80]))),
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))),
        extension('2.5.29.17', false, seq(tlv(0x82, Buffer.from(cn)))),
        aki,
        aia,
      ],
    });
    const serialHex = serial.toString('hex').toUpperCase();
    leaves.push({ der, bundle: toPem(der) + issuer.pem, serialHex });
    // `openssl ca` database line: status, expiry, revocation date, serial, file, subject.
    lines.push(`V\t${expiry}\t\t${serialHex}\tunknown\t/CN=${cn}\n`);
  }
  return { leaves, indexLines: lines.join('') };
}

function headerLength(tlvBytes: Buffer): number {
  const first = tlvBytes[1]!;
  return first < 0x80 ? 2 : 2 + (first & 0x7f);
}
