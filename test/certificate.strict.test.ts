/**
 * certificateFields, the one certificate reader (strict DER, der-reader.ts), against a full pkijs
 * parse. On every certificate we have (the shared vectors, their responses' embedded signers, the
 * openssl-built test PKI, the bench fleet) it must answer, with fields equal, field for field, to
 * what pkijs reads. What is not canonical DER or breaks RFC 5280's rules is refused in the user's
 * terms. On a seeded fuzz corpus, whatever it accepts pkijs reads the same. FUZZ_SEED overrides
 * the seed; a failure names its seed, case and mutations.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatName, parseCertificates } from '../lambda/core/certificate.js';
import { CertificateParseError } from '../lambda/core/errors.js';
import { certificateFields, type CertificateFields } from '../lambda/core/certificate-fields.js';
import { pemBlocks, toArrayBuffer } from '../lambda/core/der.js';
import { childrenOf, readRoot, type Tlv } from '../lambda/core/der-reader.js';
import { makeFleet } from '../bench/fleet.js';
import { mutate, prng } from './helpers/fuzz.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { VECTORS_DIR } from './helpers/vectors.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0xce27) >>> 0;
const MUTATIONS = 4000;

interface Sample {
  name: string;
  der: Buffer;
}

/** Every CERTIFICATE block of every .pem under the vectors, and each response's embedded certs. */
function vectorCertificates(): Sample[] {
  const out: Sample[] = [];
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)],
    );
  for (const file of walk(VECTORS_DIR).sort()) {
    const name = path.relative(VECTORS_DIR, file);
    const bytes = readFileSync(file);
    if (file.endsWith('.pem')) {
      pemBlocks(bytes.toString('latin1'))
        .filter((b) => b.label === 'CERTIFICATE')
        .forEach((b, i) => out.push({ name: `${name}#${i}`, der: b.der }));
    } else if (file.endsWith('.der')) {
      embeddedCertificates(bytes).forEach((der, i) => out.push({ name: `${name} certs[${i}]`, der }));
    }
  }
  return out;
}

/** BasicOCSPResponse.certs of an OCSP response, as their exact bytes (none when it has none). */
function embeddedCertificates(response: Buffer): Buffer[] {
  const nth = (bytes: Buffer, tlv: Tlv | undefined, i: number) => childrenOf(bytes, tlv)?.[i];
  const responseBytes = nth(response, readRoot(response), 1); // [0] EXPLICIT ResponseBytes
  const octets = nth(response, nth(response, responseBytes, 0), 1);
  if (!octets) return [];
  const basic = response.subarray(octets.contentStart, octets.end);
  const certs = nth(basic, readRoot(basic), 3); // [0] EXPLICIT SEQUENCE OF Certificate
  const list = nth(basic, certs, 0);
  return (childrenOf(basic, list) ?? []).map((c) => basic.subarray(c.start, c.end));
}

const manifest = JSON.parse(readFileSync(path.join(VECTORS_DIR, 'MANIFEST.json'), 'utf8')) as {
  vectors: { issuer_cert?: string | null; subject_cert?: string | null }[];
};
const manifestFiles = [
  ...new Set(manifest.vectors.flatMap((v) => [v.issuer_cert, v.subject_cert]).filter(Boolean)),
] as string[];

const fleet = makeFleet(40, 'http://127.0.0.1:8080/ocsp', new Date('2026-01-15T12:00:00Z'), 11);
const fleetCertificates: Sample[] = [
  { name: 'fleet issuer', der: fleet.issuerDer },
  { name: 'fleet responder (EKU OCSPSigning, nocheck)', der: fleet.responderDer },
  ...fleet.leaves.map((leaf, i) => ({ name: `fleet leaf ${i}`, der: leaf.der })),
];

let pki: TestPki;
let pkiCertificates: Sample[] = [];
beforeAll(async () => {
  pki = await makeTestPki();
  const files: [string, string][] = [
    ['pki root', pki.root.cert],
    ['pki intermediate', pki.intermediate.cert],
    ['pki delegated signer (EKU OCSPSigning)', pki.signer.cert],
    ['pki signer without EKU', pki.signerNoEku.cert],
    ...Object.entries(pki.leaves).map(([name, leaf]): [string, string] => [`pki leaf ${name}`, leaf.cert]),
  ];
  pkiCertificates = files.map(([name, file]) => ({
    name,
    der: pemBlocks(readFileSync(file, 'latin1')).find((b) => b.label === 'CERTIFICATE')!.der,
  }));
}, 180_000);
afterAll(() => pki?.cleanup());

/** The fields as a full pkijs parse reads them, in CertificateFields' terms. */
function pkijsFields(der: Buffer) {
  const cert = new pkijs.Certificate({ schema: asn1js.fromBER(toArrayBuffer(der)).result });
  const buf = (view: ArrayBuffer | Uint8Array) =>
    Buffer.from(view instanceof Uint8Array ? view : new Uint8Array(view));
  const ext = (oid: string) => cert.extensions?.filter((e) => e.extnID === oid) ?? [];
  const last = <T>(items: T[]) => items[items.length - 1];
  const aia = ext('1.3.6.1.5.5.7.1.1').flatMap((e) => (e.parsedValue as pkijs.InfoAccess).accessDescriptions);
  const urls = (method: string) =>
    aia
      .filter((d) => d.accessMethod === method && d.accessLocation.type === 6)
      .map((d) => d.accessLocation.value as string);
  const keyUsage = last(ext('2.5.29.15'))?.parsedValue as asn1js.BitString | undefined;
  const basic = last(ext('2.5.29.19'))?.parsedValue as pkijs.BasicConstraints | undefined;
  const eku = last(ext('2.5.29.37'))?.parsedValue as pkijs.ExtKeyUsage | undefined;
  const ski = last(ext('2.5.29.14'))?.parsedValue as asn1js.OctetString | undefined;
  const aki = last(ext('2.5.29.35'))?.parsedValue as pkijs.AuthorityKeyIdentifier | undefined;
  const tls = ext('1.3.6.1.5.5.7.1.24').at(-1);
  const tlsFeatures = tls
    ? (asn1js.fromBER(tls.extnValue.valueBlock.valueHexView).result as asn1js.Sequence).valueBlock.value.map(
        (i) => (i as asn1js.Integer).valueBlock.valueDec,
      )
    : [];
  const params = cert.signatureAlgorithm.algorithmParams as asn1js.BaseBlock | undefined;
  return {
    serial: buf(cert.serialNumber.valueBlock.valueHexView),
    subjectDer: buf(cert.subject.valueBeforeDecode),
    issuerDer: buf(cert.issuer.valueBeforeDecode),
    subject: formatName(cert.subject),
    issuer: formatName(cert.issuer),
    publicKeyBits: buf(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView),
    spkiDer: buf(cert.subjectPublicKeyInfo.toSchema().toBER()),
    tbsDer: buf(cert.tbsView),
    signatureAlgorithm: {
      oid: cert.signatureAlgorithm.algorithmId,
      params: params && params.toBER ? buf(params.toBER()) : undefined,
    },
    signature: buf(cert.signatureValue.valueBlock.valueHexView),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    ocspUrls: urls('1.3.6.1.5.5.7.48.1'),
    caIssuersUrls: urls('1.3.6.1.5.5.7.48.2'),
    mustStaple: tlsFeatures.includes(5),
    isCA: basic?.cA ?? false,
    extKeyUsage: eku?.keyPurposes,
    digitalSignature: keyUsage ? (keyUsage.valueBlock.valueHexView[0] ?? 0) >= 0x80 : undefined,
    criticalExtensions: (cert.extensions ?? []).filter((e) => e.critical).map((e) => e.extnID),
    subjectKeyId: ski ? buf(ski.valueBlock.valueHexView) : undefined,
    authorityKeyId: aki?.keyIdentifier ? buf(aki.keyIdentifier.valueBlock.valueHexView) : undefined,
  };
}

/** formatName shows a name value that is not a string as `#`; we show its DER in hex after it. */
const hashOnly = (f: CertificateFields) => ({
  ...f,
  subject: f.subject.replace(/=#[0-9a-f]+/g, '=#'),
  issuer: f.issuer.replace(/=#[0-9a-f]+/g, '=#'),
});

/** Every field: certificateFields answers, and agrees with pkijs. */
function expectAllPathsAgree(sample: Sample): CertificateFields {
  const fields = certificateFields(sample.der);
  expect(fields, `${sample.name}: refused`).toBeDefined();
  // pkijs's reading of every field, criticalExtensions from its list of every extension (oid, critical).
  expect(hashOnly(fields!), sample.name).toStrictEqual(pkijsFields(sample.der));
  return fields!;
}

/** Why parseCertificates refuses `der` (its message), or undefined when it accepts it. */
function refusal(der: Buffer): string | undefined {
  try {
    parseCertificates(der);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(CertificateParseError);
    return (err as Error).message;
  }
}

describe('certificateFields on real certificates', () => {
  const vectors = vectorCertificates();

  it('reads every certificate of the shared vectors (PEM files and responses) as the slow path and pkijs do', () => {
    // 50 PEM certificates and the signers embedded in the responses: a floor, not a snapshot.
    expect(vectors.length).toBeGreaterThanOrEqual(50);
    let taken = 0;
    for (const sample of vectors) {
      expectAllPathsAgree(sample);
      taken++;
    }
    expect(taken).toBe(vectors.length);
  });

  it('reads each MANIFEST issuer_cert and subject_cert as the Certificate the renewer builds', () => {
    expect(manifestFiles.length).toBeGreaterThan(10);
    for (const file of manifestFiles) {
      for (const cert of parseCertificates(readFileSync(path.join(VECTORS_DIR, file)))) {
        const fields = expectAllPathsAgree({ name: file, der: cert.der });
        expect(cert.subject, file).toBe(fields.subject);
        expect(cert.notAfter, file).toEqual(fields.notAfter);
      }
    }
  });

  it('reads the bench fleet: issuer, delegated responder, leaves', () => {
    for (const sample of fleetCertificates) expectAllPathsAgree(sample);
    const leaf = certificateFields(fleet.leaves[0]!.der)!;
    expect(leaf.ocspUrls).toEqual(['http://127.0.0.1:8080/ocsp']);
    expect(leaf.extKeyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(leaf.criticalExtensions).toEqual(['2.5.29.19', '2.5.29.15']);
    const responder = certificateFields(fleet.responderDer)!;
    expect(responder.extKeyUsage).toEqual(['1.3.6.1.5.5.7.3.9']);
    expect(responder.authorityKeyId).toEqual(certificateFields(fleet.issuerDer)!.subjectKeyId);
  });

  it('reads the openssl-built test PKI: RSA and ECDSA leaves, must-staple, no AIA, CAs, delegated signers', () => {
    expect(pkiCertificates.length).toBe(11);
    const by = new Map(pkiCertificates.map((s) => [s.name, expectAllPathsAgree(s)]));
    expect(by.get('pki leaf mustStaple')!.mustStaple).toBe(true);
    expect(by.get('pki leaf good')!.mustStaple).toBe(false);
    expect(by.get('pki leaf noOcsp')!.ocspUrls).toEqual([]);
    expect(by.get('pki leaf good')!.ocspUrls).toEqual([pki.ocspUrl]);
    expect(by.get('pki leaf good')!.caIssuersUrls).toEqual([pki.caIssuersUrl]);
    expect(by.get('pki leaf ec')!.publicKeyBits[0]).toBe(0x04); // an uncompressed EC point
    expect(by.get('pki leaf good')!.signatureAlgorithm.oid).toBe('1.2.840.113549.1.1.11');
    expect(by.get('pki leaf good')!.signatureAlgorithm.params).toEqual(Buffer.from('0500', 'hex'));
    expect(by.get('pki intermediate')!.isCA).toBe(true);
    expect(by.get('pki delegated signer (EKU OCSPSigning)')!.extKeyUsage).toEqual(['1.3.6.1.5.5.7.3.9']);
    expect(by.get('pki signer without EKU')!.extKeyUsage).toBeUndefined();
  });
});

/** A fleet leaf with tbsCertificate field `index` replaced by `field` (signature left stale). */
function leafWith(index: number, field: Buffer): Buffer {
  const der = fleet.leaves[0]!.der;
  const [tbs, ...rest] = childrenOf(der, readRoot(der))!;
  const fields = childrenOf(der, tbs)!.map((f) => der.subarray(f.start, f.end));
  fields[index] = field;
  return seq(seq(...fields), ...rest.map((f) => der.subarray(f.start, f.end)));
}
const tlv = (tag: number, body: Buffer) => {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
};
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const CN = Buffer.from('0603550403', 'hex');
const nameOf = (value: Buffer) => seq(tlv(0x31, seq(CN, value)));
const SUBJECT = 5; // version, serial, signature, issuer, validity, subject

describe("certificateFields: canonical DER and RFC 5280 or a refusal in the user's terms", () => {
  const leaf = () => Buffer.from(fleet.leaves[0]!.der);
  const refused: { name: string; der: () => Buffer; error: RegExp }[] = [
    {
      name: 'a BER length (long form for a short length) on the outer SEQUENCE',
      // 30 82 HH LL …: rewritten as 30 83 00 HH LL
      der: () => Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), leaf().subarray(2)]),
      error:
        /^not a certificate: DER decoding failed at byte 1: a length with a leading zero octet \(BER, not DER\)$/,
    },
    {
      name: 'a trailing byte after the certificate',
      der: () => Buffer.concat([leaf(), Buffer.from([0])]),
      error:
        /^not a certificate: DER decoding failed at byte \d+: 1 bytes of trailing data after the element$/,
    },
    {
      name: 'a subject UTF8String that is not UTF-8',
      der: () => leafWith(SUBJECT, nameOf(tlv(0x0c, Buffer.from([0x61, 0xff])))),
      error: /^not a certificate: well-formed DER, but not the structure of an X\.509 certificate$/,
    },
    {
      name: 'a notAfter with fractional seconds',
      der: () =>
        leafWith(
          4,
          seq(tlv(0x17, Buffer.from('260101000000Z')), tlv(0x18, Buffer.from('20270101000000.5Z'))),
        ),
      error: /^notAfter "20270101000000.5Z" is not a UTC time of the form YYYYMMDDHHMMSSZ$/,
    },
    {
      name: 'a validity of three times',
      der: () =>
        leafWith(
          4,
          seq(...['260101000000Z', '270101000000Z', '280101000000Z'].map((t) => tlv(0x17, Buffer.from(t)))),
        ),
      error: /^not a certificate: well-formed DER, but not the structure/,
    },
    {
      name: 'a serial INTEGER with a needless leading zero',
      der: () => leafWith(1, tlv(0x02, Buffer.from([0x00, 0x01]))),
      error:
        /^not a certificate: DER decoding failed at byte \d+: an INTEGER not in its minimal form \(BER, not DER\)$/,
    },
    {
      name: 'an explicit version v1 (DER leaves the DEFAULT out)',
      der: () => leafWith(0, tlv(0xa0, tlv(0x02, Buffer.from([0])))),
      error: /^not DER: the certificate encodes version v1, which DER leaves out$/,
    },
    {
      name: 'a tbsCertificate signature algorithm other than the outer one (RFC 5280 §4.1.1.2)',
      der: () => leafWith(2, seq(hex('06082a8648ce3d040303'))), // ecdsa-with-SHA384 inside, SHA256 outside
      error: /the signature algorithm in tbsCertificate differs from the outer one/,
    },
    {
      name: 'a signature BIT STRING with unused bits',
      der: () => {
        const der = leaf();
        const [tbs, alg, sig] = childrenOf(der, readRoot(der))!;
        const bits = der.subarray(sig!.contentStart + 1, sig!.end);
        bits[bits.length - 1] = 0; // the unused bits must be zero in DER
        const part = (t: Tlv) => der.subarray(t.start, t.end);
        return seq(part(tbs!), part(alg!), tlv(0x03, Buffer.concat([Buffer.from([1]), bits])));
      },
      error: /^not DER: the certificate's signature has 1 unused bits$/,
    },
    {
      name: 'an explicit critical FALSE',
      der: () => leafWithExtensions(seq(hex(EXT.keyUsage), hex('010100'), tlv(0x04, hex('03020780')))),
      error: /^not DER: extension 2\.5\.29\.15 has an explicit critical FALSE/,
    },
    {
      name: 'an extension twice (RFC 5280 §4.2)',
      der: () =>
        leafWithExtensions(
          extension(EXT.keyUsage, hex('03020780')),
          extension(EXT.keyUsage, hex('03020780')),
        ),
      error: /extension 2\.5\.29\.15 appears twice/,
    },
    {
      name: 'a needed extension whose value is BER (a long-form short length)',
      der: () => leafWithExtensions(extension(EXT.keyUsage, hex('03 81 02 05a0'))),
      error: /^not DER: the value of extension 2\.5\.29\.15 is not DER$/,
    },
    {
      name: 'a needed extension whose value has a byte after its DER',
      der: () => leafWithExtensions(extension(EXT.extKeyUsage, Buffer.concat([seq(SERVER_AUTH), hex('00')]))),
      error: /^not DER: the value of extension 2\.5\.29\.37 is not DER$/,
    },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, () => {
      const der = c.der();
      expect(refusal(der)).toMatch(c.error);
    });
  }

  it('reads names in BMPString, and values that are no string as # and their DER', () => {
    expect(
      certificateFields(leafWith(SUBJECT, nameOf(tlv(0x1e, Buffer.from('\u0000h\u0000i', 'latin1')))))!
        .subject,
    ).toBe('CN=hi');
    expect(certificateFields(leafWith(SUBJECT, nameOf(tlv(0x02, Buffer.from([1])))))!.subject).toBe(
      'CN=#020101',
    );
  });
});

/** A fleet leaf whose extensions are exactly `extensions`. */
const leafWithExtensions = (...extensions: Buffer[]) => leafWith(7, tlv(0xa3, seq(...extensions)));
const hex = (h: string) => Buffer.from(h.replace(/ /g, ''), 'hex');
const extension = (oidHex: string, value: Buffer, critical = false) =>
  seq(hex(oidHex), ...(critical ? [hex('0101ff')] : []), tlv(0x04, value));
const EXT = {
  keyUsage: '0603551d0f',
  basicConstraints: '0603551d13',
  extKeyUsage: '0603551d25',
  aki: '0603551d23',
  aia: '06082b06010505070101',
  tlsFeature: '06082b06010505070118',
};
const OCSP_METHOD = hex('06082b06010505073001');
const CA_ISSUERS_METHOD = hex('06082b06010505073002');
const SERVER_AUTH = hex('06082b06010505070301');
const uri = (url: string) => tlv(0x86, Buffer.from(url, 'latin1'));

describe('needed extensions in unusual but canonical DER', () => {
  const cases: { name: string; der: Buffer; want: Partial<CertificateFields> }[] = [
    {
      name: 'a subject with UTF-8 beyond ASCII, a TeletexString byte, a multi-valued RDN and an unlabelled OID',
      der: leafWith(
        SUBJECT,
        seq(
          tlv(0x31, seq(hex('0603550406'), tlv(0x13, Buffer.from('DE')))),
          tlv(0x31, seq(hex('060355040a'), tlv(0x14, Buffer.from([0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72])))),
          tlv(
            0x31,
            Buffer.concat([
              seq(CN, tlv(0x0c, Buffer.from('Ünïcødé 証明書 😀', 'utf8'))),
              seq(hex('06032a0304'), tlv(0x16, Buffer.from('x@y'))),
            ]),
          ),
        ),
      ),
      want: { subject: '1.2.3.4=x@y,CN=Ünïcødé 証明書 😀,O=M\xfcller,C=DE' },
    },
    {
      name: 'an EKU list with an INTEGER among the OIDs (skipped)',
      der: leafWithExtensions(extension(EXT.extKeyUsage, seq(SERVER_AUTH, hex('020101')))),
      want: { extKeyUsage: ['1.3.6.1.5.5.7.3.1'] },
    },
    {
      name: 'an EKU value that is no SEQUENCE (an empty list)',
      der: leafWithExtensions(extension(EXT.extKeyUsage, SERVER_AUTH)),
      want: { extKeyUsage: [] },
    },
    {
      name: 'AIA with a directoryName location, a latin1 URI and two OCSP URLs',
      der: leafWithExtensions(
        extension(
          EXT.aia,
          seq(
            seq(OCSP_METHOD, tlv(0xa4, seq(tlv(0x31, seq(CN, tlv(0x13, Buffer.from('x'))))))),
            seq(OCSP_METHOD, uri('http://ocsp.test/\xe9')),
            seq(CA_ISSUERS_METHOD, uri('http://ca.test/i.der')),
            seq(OCSP_METHOD, uri('http://second.test/')),
          ),
        ),
      ),
      want: {
        ocspUrls: ['http://ocsp.test/\xe9', 'http://second.test/'],
        caIssuersUrls: ['http://ca.test/i.der'],
      },
    },
    {
      name: 'basicConstraints with only a pathLenConstraint (not a CA)',
      der: leafWithExtensions(extension(EXT.basicConstraints, seq(hex('020100')), true)),
      want: { isCA: false, criticalExtensions: ['2.5.29.19'] },
    },
    {
      name: 'basicConstraints cA TRUE with a pathLenConstraint',
      der: leafWithExtensions(extension(EXT.basicConstraints, seq(hex('0101ff'), hex('020100')))),
      want: { isCA: true },
    },
    {
      name: 'a keyUsage value that is an OCTET STRING (digitalSignature false, not absent)',
      der: leafWithExtensions(extension(EXT.keyUsage, hex('040180'))),
      want: { digitalSignature: false },
    },
    {
      name: 'a keyUsage with digitalSignature and keyEncipherment',
      der: leafWithExtensions(extension(EXT.keyUsage, hex('030205a0'))),
      want: { digitalSignature: true },
    },
    {
      name: 'an AKI with authorityCertSerialNumber only (no key id)',
      der: leafWithExtensions(extension(EXT.aki, seq(hex('820101')))),
      want: { authorityKeyId: undefined },
    },
    {
      name: 'TLS features status_request among others',
      der: leafWithExtensions(extension(EXT.tlsFeature, seq(hex('020111'), hex('020105')))),
      want: { mustStaple: true },
    },
    {
      name: 'TLS features without status_request (261 is not 5)',
      der: leafWithExtensions(extension(EXT.tlsFeature, seq(hex('02020105')))),
      want: { mustStaple: false },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(certificateFields(c.der)).toMatchObject(c.want);
    });
  }
});

/** The fields the needed extensions' values give. */
const EXTENSION_FIELDS: (keyof CertificateFields)[] = [
  'ocspUrls',
  'caIssuersUrls',
  'mustStaple',
  'digitalSignature',
  'isCA',
  'extKeyUsage',
  'subjectKeyId',
  'authorityKeyId',
];

describe(`fuzzed certificates (seed ${SEED})`, () => {
  it(`${MUTATIONS} mutations: whatever certificateFields accepts, pkijs reads the same`, () => {
    const seeds = [...vectorCertificates(), ...fleetCertificates.slice(0, 6), ...pkiCertificates];
    const rand = prng(SEED);
    const counts = { accepted: 0, refused: 0 };
    for (let n = 0; n < MUTATIONS; n++) {
      const seed = seeds[Math.floor(rand() * seeds.length)]!;
      const { bytes, what } = mutate(seed.der, rand);
      const label = `seed ${SEED} case ${n}: ${seed.name}, ${what}`;
      let fields: CertificateFields | undefined;
      try {
        fields = certificateFields(bytes);
      } catch (err) {
        expect(err, label).toBeInstanceOf(CertificateParseError);
      }
      if (!fields) {
        counts.refused++;
        expect(refusal(bytes), label).toBeDefined();
        continue;
      }
      counts.accepted++;
      // The structure, names, keys, times and signature as pkijs reads them. What the needed
      // extensions' values say is pinned by the tables above: pkijs reads a mutated value its
      // own lenient way (a GeneralName it does not know empties the list, say).
      const want = { ...pkijsFields(bytes) };
      for (const key of EXTENSION_FIELDS) (want as Record<string, unknown>)[key] = fields[key];
      expect(hashOnly(fields), label).toStrictEqual(want);
    }
    expect(counts.refused).toBeGreaterThan(0);
    // Most mutations break the DER, but a good share land in signatures, keys and strings.
    expect(counts.accepted).toBeGreaterThan(MUTATIONS / 20);
  });
});
