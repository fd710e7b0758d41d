/**
 * parseOcspResponse, the one strict DER parser: every shared vector, responses made by `openssl
 * ocsp` and by bench/fleet.ts, and whatever it accepts of a seeded fuzz corpus (FUZZ_SEED overrides
 * the seed) read field for field as a full pkijs parse reads them (pkijs.OCSPResponse +
 * pkijs.BasicOCSPResponse); what it refuses, a ResponseParseError with its code. The names it
 * renders and compares (der-name.ts), and the statuses it reads.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFleet } from '../bench/fleet.js';
import { formatName } from '../lambda/core/certificate.js';
import { formatNameDer, sameName } from '../lambda/core/der-name.js';
import { readRoot } from '../lambda/core/der-reader.js';
import { toArrayBuffer } from '../lambda/core/der.js';
import { ResponseParseError } from '../lambda/core/errors.js';
import { parseOcspResponse, type ExtensionInfo, type ParsedResponse } from '../lambda/core/ocsp-response.js';
import { mutate, prng } from './helpers/fuzz.js';
import { makeTestPki, openssl, type TestPki } from './helpers/pki.js';
import { VECTORS_DIR } from './helpers/vectors.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0xfa57) >>> 0;
const MUTATIONS = 4000;

const manifest = JSON.parse(readFileSync(path.join(VECTORS_DIR, 'MANIFEST.json'), 'utf8')) as {
  vectors: Array<{ id: string; file: string }>;
};
const vectors = manifest.vectors.map((v) => ({
  id: v.id,
  der: readFileSync(path.join(VECTORS_DIR, v.file)),
}));

/** What parseOcspResponse refuses: a ResponseParseError with its code, or undefined when it accepts. */
function refusal(der: Buffer): ResponseParseError | undefined {
  try {
    parseOcspResponse(der);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ResponseParseError);
    return err as ResponseParseError;
  }
}

/** RFC 6960 §4.2.1 and RFC 5280 §5.3.1, written out again here rather than imported. */
const STATUS: Record<number, string> = { 0: 'successful', 1: 'malformedRequest', 2: 'internalError', 3: 'tryLater', 5: 'sigRequired', 6: 'unauthorized' }; // prettier-ignore
const REASONS: Record<number, string> = { 0: 'unspecified', 1: 'keyCompromise', 2: 'cACompromise', 3: 'affiliationChanged', 4: 'superseded', 5: 'cessationOfOperation', 6: 'certificateHold', 8: 'removeFromCRL', 9: 'privilegeWithdrawn', 10: 'aACompromise' }; // prettier-ignore

const buf = (view: ArrayBuffer | Uint8Array) =>
  Buffer.from(view instanceof Uint8Array ? view : new Uint8Array(view));

/** Extensions as pkijs reads them, in ExtensionInfo's shape. */
const pkijsExtensions = (list: pkijs.Extension[] | undefined): ExtensionInfo[] =>
  (list ?? []).map((e) => ({
    oid: e.extnID,
    critical: e.critical,
    value: buf(e.extnValue.valueBlock.valueHexView),
  }));

/**
 * A ParsedResponse against a full pkijs parse of the same bytes, field by field (pkijs's schema
 * matching, not the structure walk either of our paths does).
 */
function expectSameAsPkijs(parsed: ParsedResponse, der: Buffer, label: string): void {
  const ocsp = new pkijs.OCSPResponse({ schema: asn1js.fromBER(toArrayBuffer(der)).result });
  const code = ocsp.responseStatus.valueBlock.valueDec;
  expect(parsed.responseStatus, label).toBe(STATUS[code] ?? `UNKNOWN(${code})`);
  expect(parsed.responseType, label).toBe(ocsp.responseBytes?.responseType);
  if (!parsed.basic) {
    expect(code !== 0 || ocsp.responseBytes?.responseType !== pkijs.id_PKIX_OCSP_Basic, label).toBe(true);
    return;
  }
  // BasicOCSPResponse's fields through pkijs, all but the certificates: those go to
  // certificateFromDer, so they are compared as bytes below.
  const inner = ocsp.responseBytes!.response.valueBlock.valueHexView;
  const [tbsBlock, algBlock, sigBlock, certsField] = (asn1js.fromBER(inner).result as asn1js.Sequence)
    .valueBlock.value as [asn1js.Sequence, asn1js.Sequence, asn1js.BitString, asn1js.Constructed | undefined];
  const data = new pkijs.ResponseData({ schema: tbsBlock });
  const signatureAlgorithm = new pkijs.AlgorithmIdentifier({ schema: algBlock });
  const b = parsed.basic;
  expect(b.tbsDer, label).toEqual(buf(data.tbsView));
  if ('byName' in b.responderId) {
    expect(data.responderID, label).toBeInstanceOf(pkijs.RelativeDistinguishedNames);
    const name = data.responderID as pkijs.RelativeDistinguishedNames;
    // formatName shows a value that is not a string as `#`; we show its DER in hex after it.
    expect(b.responderId.name.replace(/=#[0-9a-f]+/g, '=#'), label).toBe(formatName(name));
    expect(b.responderId.byName, label).toEqual(buf(name.valueBeforeDecode));
  } else {
    expect(data.responderID, label).toBeInstanceOf(asn1js.OctetString);
    expect(b.responderId.byKey, label).toEqual(
      buf((data.responderID as asn1js.OctetString).valueBlock.valueHexView),
    );
  }
  expect(b.producedAt, label).toEqual(data.producedAt);
  expect(b.responses.length, label).toBe(data.responses.length);
  for (const [i, single] of data.responses.entries()) {
    const ours = b.responses[i]!;
    expect(ours.certId.hashOid, label).toBe(single.certID.hashAlgorithm.algorithmId);
    expect(ours.certId.issuerNameHash, label).toEqual(
      buf(single.certID.issuerNameHash.valueBlock.valueHexView),
    );
    expect(ours.certId.issuerKeyHash, label).toEqual(
      buf(single.certID.issuerKeyHash.valueBlock.valueHexView),
    );
    expect(ours.certId.serial, label).toEqual(buf(single.certID.serialNumber.valueBlock.valueHexView));
    const status = single.certStatus as asn1js.BaseBlock;
    expect(ours.certStatus, label).toBe(['good', 'revoked', 'unknown'][status.idBlock.tagNumber]);
    if (ours.certStatus === 'revoked') {
      const [time, reason] = (status as asn1js.Constructed).valueBlock.value as [
        asn1js.GeneralizedTime,
        asn1js.Constructed?,
      ];
      expect(ours.revocationTime, label).toEqual(time.toDate());
      const code = (reason?.valueBlock.value[0] as asn1js.Enumerated | undefined)?.valueBlock.valueDec;
      expect(ours.revocationReason, label).toBe(
        code === undefined ? undefined : (REASONS[code] ?? `reason(${code})`),
      );
    } else {
      expect(ours.revocationTime, label).toBeUndefined();
      expect(ours.revocationReason, label).toBeUndefined();
    }
    expect(ours.thisUpdate, label).toEqual(single.thisUpdate);
    expect(ours.nextUpdate, label).toEqual(single.nextUpdate);
    expect(ours.extensions, label).toEqual(pkijsExtensions(single.singleExtensions));
  }
  expect(b.extensions, label).toEqual(pkijsExtensions(data.responseExtensions));
  expect(b.signatureAlgorithm.oid, label).toBe(signatureAlgorithm.algorithmId);
  const params = signatureAlgorithm.algorithmParams as asn1js.BaseBlock | undefined;
  expect(b.signatureAlgorithm.params, label).toEqual(params ? buf(params.valueBeforeDecodeView) : undefined);
  expect(sigBlock, label).toBeInstanceOf(asn1js.BitString);
  expect(b.signature, label).toEqual(buf(sigBlock.valueBlock.valueHexView));
  // Each certificate's bytes as encoded in certs [0] EXPLICIT SEQUENCE OF Certificate.
  const encoded = (certsField?.valueBlock.value[0] as asn1js.Sequence | undefined)?.valueBlock.value ?? [];
  expect(
    b.certs.map((c) => c.der),
    label,
  ).toEqual(encoded.map((c) => buf(c.valueBeforeDecodeView)));
}

describe('parseOcspResponse: the shared vectors', () => {
  it(`every one of the ${vectors.length} vectors is DER and parses`, () => {
    for (const { id, der } of vectors) expect(refusal(der), id).toBeUndefined();
    // The set is what it claims to be: byName and byKey responders, revoked, several statuses.
    const all = vectors.map((v) => parseOcspResponse(v.der));
    expect(all.some((p) => p.basic && 'byName' in p.basic.responderId)).toBe(true);
    expect(all.some((p) => p.basic && 'byKey' in p.basic.responderId)).toBe(true);
    expect(all.some((p) => p.basic?.responses.some((r) => r.certStatus === 'revoked'))).toBe(true);
    expect(all.some((p) => p.responseStatus !== 'successful')).toBe(true);
  });

  it('every vector matches a full pkijs parse, field for field', () => {
    for (const { id, der } of vectors) expectSameAsPkijs(parseOcspResponse(der), der, id);
  });
});

describe('parseOcspResponse: responses made by `openssl ocsp` and bench/fleet.ts', () => {
  let pki: TestPki;
  let work: string;
  const generated: Array<{ label: string; der: Buffer }> = [];

  beforeAll(async () => {
    pki = await makeTestPki();
    work = await mkdtemp(path.join(os.tmpdir(), 'strict-parse-'));
    const { good, revoked, unknownToCa, ec } = pki.leaves;
    const intermediate = { cert: pki.intermediate.cert, key: pki.intermediate.key };
    const cases: Array<{ label: string; leaves: string[]; nonce: boolean; signer: typeof intermediate; extra: string[] }> =
      [
        { label: 'good, delegated, nonce, -ndays 7', leaves: [good.cert], nonce: true, signer: pki.signer, extra: ['-ndays', '7'] },
        { label: 'revoked, delegated', leaves: [revoked.cert], nonce: false, signer: pki.signer, extra: ['-ndays', '1'] },
        { label: 'unknown to the CA, no nextUpdate', leaves: [unknownToCa.cert], nonce: true, signer: pki.signer, extra: [] },
        { label: 'ec leaf, signed by the CA, byKey', leaves: [ec.cert], nonce: false, signer: intermediate, extra: ['-resp_key_id'] },
        {
          label: 'three certificates, no certs, sha384',
          leaves: [good.cert, revoked.cert, ec.cert],
          nonce: true,
          signer: pki.signer,
          extra: ['-resp_no_certs', '-rmd', 'sha384', '-ndays', '2'],
        },
        {
          label: 'RSASSA-PSS signature (parameters)',
          leaves: [good.cert],
          nonce: false,
          signer: pki.signer,
          extra: ['-rsigopt', 'rsa_padding_mode:pss', '-ndays', '1'],
        },
      ]; // prettier-ignore
    for (const [i, c] of cases.entries()) {
      const request = path.join(work, `request-${i}.der`);
      const response = path.join(work, `response-${i}.der`);
      await openssl(['ocsp', '-issuer', pki.intermediate.cert, ...c.leaves.flatMap((l) => ['-cert', l]),
        ...(c.nonce ? [] : ['-no_nonce']), '-reqout', request]); // prettier-ignore
      await openssl(['ocsp', '-index', pki.index, '-CA', pki.intermediate.cert, '-rsigner', c.signer.cert,
        '-rkey', c.signer.key, '-reqin', request, '-respout', response, ...c.extra]); // prettier-ignore
      generated.push({ label: `openssl: ${c.label}`, der: await readFile(response) });
    }
    const fleet = makeFleet(12, 'http://127.0.0.1:9/', new Date('2030-01-01T00:00:00Z'), 7);
    for (const [i, der] of fleet.responses.entries()) generated.push({ label: `fleet response ${i}`, der });
  }, 180_000);

  afterAll(async () => {
    await pki?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('each is read as pkijs reads it', () => {
    expect(generated.length).toBe(18);
    for (const { label, der } of generated) expectSameAsPkijs(parseOcspResponse(der), der, label);
    const openssl = generated.slice(0, 6).map((g) => parseOcspResponse(g.der).basic!);
    expect(openssl[1]!.responses[0]!.certStatus).toBe('revoked');
    expect(openssl[2]!.responses[0]!.certStatus).toBe('unknown');
    expect('byKey' in openssl[3]!.responderId).toBe(true);
    expect(openssl[4]!.responses).toHaveLength(3);
    expect(openssl[5]!.signatureAlgorithm).toMatchObject({ oid: '1.2.840.113549.1.1.10' });
    expect(openssl[5]!.signatureAlgorithm.params?.[0]).toBe(0x30);
  });
});

describe(`parseOcspResponse: fuzzed vectors (seed ${SEED})`, () => {
  it(`${MUTATIONS} mutations: what it accepts pkijs reads the same; what it refuses has a code`, () => {
    const rand = prng(SEED);
    const fleet = makeFleet(4, 'http://127.0.0.1:9/', new Date('2030-01-01T00:00:00Z'), 9);
    const seeds = [...vectors, ...fleet.responses.map((der, i) => ({ id: `fleet ${i}`, der }))];
    let accepted = 0;
    let changed = 0;
    const codes = new Set<string>();
    for (let n = 0; n < MUTATIONS; n++) {
      const seed = seeds[Math.floor(rand() * seeds.length)]!;
      const mutant = mutate(seed.der, rand);
      const label = `seed ${SEED} case ${n} (${seed.id}: ${mutant.what})`;
      const refused = refusal(mutant.bytes);
      if (refused) {
        codes.add(refused.verdictCode);
        expect(refused.message, label).toMatch(/^(not DER: .* at byte \d+ |[\w ]|embedded certificate)/);
        continue;
      }
      accepted++;
      if (!mutant.bytes.equals(seed.der)) changed++;
      try {
        expectSameAsPkijs(parseOcspResponse(mutant.bytes), mutant.bytes, label);
      } catch (err) {
        throw new Error(`${label}: ${(err as Error).message}`, { cause: err });
      }
    }
    // Exercised both ways: mutants it reads (bytes changed, structure kept) and refuses, both codes.
    expect(changed, `accepted ${accepted}`).toBeGreaterThan(0);
    expect([...codes].sort()).toEqual(['not-der', 'parse']);
  });
});

describe('formatNameDer and sameName: names read from their DER', () => {
  const tlv = (tag: number, content: Buffer): Buffer => {
    const n = content.length;
    const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
    return Buffer.concat([Buffer.from([tag, ...length]), content]);
  };
  const CN = Buffer.from('0603550403', 'hex');
  const O = Buffer.from('060355040a', 'hex');
  const OTHER = Buffer.from('06032a0304', 'hex'); // 1.2.3.4: no label
  const atv = (oid: Buffer, value: Buffer) => tlv(0x30, Buffer.concat([oid, value]));
  const name = (...rdns: Buffer[][]) =>
    tlv(0x30, Buffer.concat(rdns.map((r) => tlv(0x31, Buffer.concat(r)))));
  const str = (tag: number, bytes: Buffer | string) =>
    tlv(tag, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'));
  const viaPkijs = (der: Buffer) =>
    formatName(new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(toArrayBuffer(der)).result }));
  const format = (der: Buffer) => formatNameDer(der, readRoot(der)!);

  it('renders every string type as pkijs decodes it, UTF-8 (a BOM kept), several RDNs and multi-valued RDNs alike', () => {
    const names = [
      name([atv(CN, str(0x13, 'Printable'))], [atv(O, str(0x0c, Buffer.from('Ünïcødé ✓', 'utf8')))]),
      ...[18, 19, 20, 21, 22, 25, 26, 27].map((tag) => name([atv(OTHER, str(tag, 'caf\xe9 \xff'))])),
      name([atv(CN, str(0x0c, Buffer.from('\ufeffbom', 'utf8')))]),
      name([atv(CN, str(0x13, 'a')), atv(O, str(0x13, 'b'))], [atv(OTHER, str(0x16, ''))]),
      name([atv(CN, str(0x0c, Buffer.from('x'.repeat(300))))]),
      name([atv(CN, str(0x1e, Buffer.from('00c9006c', 'hex')))]), // BMPString "Él"
      name([atv(CN, str(0x1c, Buffer.from('0001f600', 'hex')))]), // UniversalString U+1F600
    ];
    for (const der of names) {
      const formatted = format(der);
      expect(formatted, der.toString('hex')).toBeDefined();
      expect(formatted, der.toString('hex')).toBe(viaPkijs(der));
    }
    expect(format(names[0]!)).toBe('O=Ünïcødé ✓,CN=Printable');
    expect(format(names[10]!)).toBe('1.2.3.4=,O=b,CN=a');
    expect(format(name([atv(CN, str(0x04, 'x'))]))).toBe('CN=#040178');
    expect(format(tlv(0x30, Buffer.alloc(0)))).toBe('');
  });

  it('refuses what is not a Name or a value that does not decode (OpenSSL refuses those too)', () => {
    const refused = {
      'invalid UTF-8': name([atv(CN, str(0x0c, Buffer.from('c3', 'hex')))]),
      'an odd-length BMPString': name([atv(CN, str(0x1e, Buffer.from('004100', 'hex')))]),
      'an empty RDN': name([]),
      'an attribute with three fields': name([
        tlv(0x30, Buffer.concat([CN, str(0x13, 'x'), str(0x13, 'y')])),
      ]),
      'an RDN that is a SEQUENCE': tlv(0x30, tlv(0x30, atv(CN, str(0x13, 'x')))),
    };
    for (const [what, der] of Object.entries(refused)) expect(format(der), what).toBeUndefined();
  });

  it('sameName compares as RFC 5280 §7.1 and X509_NAME_cmp do, never by the formatted string', () => {
    const printable = name([atv(O, str(0x13, 'Example  CA'))], [atv(CN, str(0x13, 'Responder'))]);
    const same = [
      name([atv(O, str(0x0c, ' example ca'))], [atv(CN, str(0x0c, 'RESPONDER'))]), // UTF8String, case, spaces
      name(
        [atv(O, str(0x1e, Buffer.from('Example CA', 'utf16le').swap16()))],
        [atv(CN, str(0x16, 'responder'))],
      ),
    ];
    const other = {
      'a multi-valued RDN': name([atv(O, str(0x13, 'Example CA')), atv(CN, str(0x13, 'Responder'))]),
      'a NumericString against a PrintableString': name(
        [atv(O, str(0x12, 'Example CA'))],
        [atv(CN, str(0x13, 'Responder'))],
      ),
      'the RDNs in the other order': name(
        [atv(CN, str(0x13, 'Responder'))],
        [atv(O, str(0x13, 'Example CA'))],
      ),
      'another value': name([atv(O, str(0x13, 'Example CA'))], [atv(CN, str(0x13, 'Responder2'))]),
    };
    expect(sameName(printable, printable)).toBe(true);
    for (const der of same) expect(sameName(printable, der), der.toString('hex')).toBe(true);
    for (const [what, der] of Object.entries(other)) {
      expect(sameName(printable, der), what).toBe(false);
    }
    // The formatted strings of a multi-valued RDN and of two RDNs are the same: sameName does not use them.
    const twoRdns = name([atv(O, str(0x13, 'Example CA'))], [atv(CN, str(0x13, 'Responder'))]);
    expect(format(other['a multi-valued RDN'])).toBe(format(twoRdns));
    expect(sameName(other['a multi-valued RDN'], twoRdns)).toBe(false);
    const multi = name([atv(CN, str(0x13, 'b')), atv(O, str(0x13, 'a'))]);
    const multiSwapped = name([atv(O, str(0x13, 'a')), atv(CN, str(0x13, 'b'))]);
    expect(sameName(multi, multiSwapped)).toBe(true); // a SET: its order does not matter
  });
});

describe('parseOcspResponse: statuses', () => {
  const response = (status: string) =>
    Buffer.from(`30${(status.length / 2).toString(16).padStart(2, '0')}${status}`, 'hex');

  it('reads the status of a response without responseBytes', () => {
    for (const [status, name] of [
      ['0a0101', 'malformedRequest'],
      ['0a0103', 'tryLater'],
      ['0a0104', 'UNKNOWN(4)'],
      ['0a0106', 'unauthorized'],
      ['0a020080', 'UNKNOWN(128)'],
    ] as const) {
      expect(parseOcspResponse(response(status))).toStrictEqual({
        der: response(status),
        responseStatus: name,
        responseType: undefined,
        basic: undefined,
      });
    }
  });

  it('refuses a status that is empty, padded, negative, too long or not an ENUMERATED, with its code', () => {
    for (const [status, code] of [
      ['0a00', 'not-der'],
      ['0a02007f', 'not-der'],
      ['0a0181', 'not-der'],
      ['0a0400800000', 'not-der'],
      ['020100', 'parse'],
    ] as const) {
      expect(refusal(response(status))?.verdictCode, status).toBe(code);
    }
    expect(refusal(response('0a00'))?.message).toBe(
      'not DER: responseStatus at byte 2 is not a small DER ENUMERATED',
    );
  });
});
