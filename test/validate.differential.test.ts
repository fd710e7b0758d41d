/**
 * The differential test against OpenSSL (issue 19): whatever the project calls valid, OpenSSL must
 * accept, judged as an OpenSSL-based client judges a staple — `openssl ocsp -respin … -verify_other
 * issuer -CAfile issuer` WITHOUT `-issuer` (which trusts the issuer outright on failure).
 *
 * For every key type (RSA, RSA-PSS, ECDSA P-256/384/521, Ed25519, Ed448) a CA, a delegated OCSP
 * signer and a leaf are made with `openssl`; responses are built and signed here (node:crypto), so
 * each cause of issue 19 can be made on purpose: non-DER outside and inside the signed part, extra
 * elements, unused bits, a responder certificate RFC 5280 refuses, names that only look the same,
 * two embedded signers, times, RSASSA-PSS without parameters, SingleResponses that disagree or are
 * about another CA's certificate. Each case states what the project says (its code) and what OpenSSL
 * says; a case the project refuses and OpenSSL accepts is a place the project is deliberately
 * stricter (docs/validation.md). Then seeded mutants of the valid responses (FUZZ_SEED). Any
 * response the project calls valid and OpenSSL refuses fails the test. The OpenSSL calls run two at
 * a time; the whole file takes well under a minute.
 */
import { execFile } from 'node:child_process';
import { constants, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificates, type Certificate } from '../lambda/core/certificate.js';
import { childrenOf, readRoot, type Tlv } from '../lambda/core/der-reader.js';
import { derElement, digest, HASH_OIDS, type HashName } from '../lambda/core/der.js';
import { NONCE_OID } from '../lambda/core/ocsp-request.js';
import { judgeStaple } from '../lambda/core/validate.js';
import { type VerdictCode } from '../lambda/core/verdict.js';
import { mutate, prng } from './helpers/fuzz.js';
import { openssl } from './helpers/pki.js';

const execFileAsync = promisify(execFile);
const SEED = Number(process.env.FUZZ_SEED ?? 0xd1ff) >>> 0;
const MUTANTS = 5000;

// --- a small DER writer ---------------------------------------------------------------------------

const tlv = derElement;
const seq = (...parts: Uint8Array[]) => tlv(0x30, ...parts);
const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const arc of rest) {
    const out = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) out.unshift((v & 0x7f) | 0x80);
    bytes.push(...out);
  }
  return tlv(0x06, Buffer.from(bytes));
}
const gtime = (d: Date) => tlv(0x18, Buffer.from(d.toISOString().replace(/[-:T]|\.\d{3}/g, ''), 'latin1'));
const NULL = hex('0500');
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
/** The parts of a TLV (its whole encodings), by the strict reader. */
const parts = (der: Buffer, t?: Tlv) =>
  childrenOf(der, t ?? readRoot(der))!.map((c) => der.subarray(c.start, c.end));

// --- the PKIs, one per key type -------------------------------------------------------------------

type KeyType = 'rsa' | 'rsa-pss' | 'p256' | 'p384' | 'p521' | 'ed25519' | 'ed448';
const KEY_TYPES: Record<KeyType, string[]> = {
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  'rsa-pss': ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048'],
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  p521: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
  ed25519: ['-algorithm', 'ED25519'],
  ed448: ['-algorithm', 'ED448'],
};

interface Party {
  cert: Certificate;
  key: KeyObject;
  pem: string;
}
interface Pki {
  type: KeyType;
  ca: Party;
  signer: Party;
  leaf: Certificate;
  /** Signers of the p256 PKI that RFC 5280 or OpenSSL refuse, by name. */
  variants: Record<string, Party>;
}

let work: string;
const pkis = {} as Record<KeyType, Pki>;
/** The instant responses are made and judged at: set once the certificates exist (their notBefore is "now"). */
let now = new Date();

const SIGNER_EXT =
  'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning';
const VARIANTS: Record<string, string> = {
  'critical SKI': `${SIGNER_EXT}\nsubjectKeyIdentifier=critical,hash`,
  'critical AKI': `${SIGNER_EXT}\nauthorityKeyIdentifier=critical,keyid:always`,
  'critical AIA': `${SIGNER_EXT}\nauthorityInfoAccess=critical,caIssuers;URI:http://ca.test/ca.der`,
  'no OCSPSigning EKU': 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature',
  'an unknown critical extension': `${SIGNER_EXT}\n1.2.3.4=critical,DER:0500`,
  'keyUsage without digitalSignature':
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=OCSPSigning',
};
/** What OpenSSL makes of each variant: it does not look at a responder's keyUsage. */
const VARIANT_OPENSSL: Record<string, 'accepts' | 'refuses'> = {
  'keyUsage without digitalSignature': 'accepts',
};

async function makePki(type: KeyType, dir: string): Promise<Pki> {
  const f = (name: string) => path.join(dir, `${type}-${name}`);
  await Promise.all(
    ['ca', 'signer'].map((n) => openssl(['genpkey', ...KEY_TYPES[type], '-out', f(`${n}.key`)])),
  );
  await openssl(['genpkey', ...KEY_TYPES.p256, '-out', f('leaf.key')]);
  await openssl(['req', '-x509', '-new', '-key', f('ca.key'), '-subj', `/O=differential/CN=${type} CA`, '-days', '30',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash', '-out', f('ca.pem')]); // prettier-ignore
  const issue = async (name: string, key: string, subject: string, ext: string, serial: number) => {
    await writeFile(f(`${name}.ext`), `[ x ]\n${ext}\n`);
    await openssl(['req', '-new', '-key', key, '-subj', subject, '-out', f(`${name}.csr`)]);
    await openssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-days', '20',
      '-set_serial', String(serial), '-extfile', f(`${name}.ext`), '-extensions', 'x', '-out', f(`${name}.pem`)]); // prettier-ignore
    return readParty(f(`${name}.pem`), key);
  };
  const ca = await readParty(f('ca.pem'), f('ca.key'));
  const signer = await issue(
    'signer',
    f('signer.key'),
    `/O=differential/CN=${type} OCSP signer`,
    SIGNER_EXT,
    0x2001,
  );
  const leaf = (await issue('leaf', f('leaf.key'), `/CN=${type} leaf`, 'basicConstraints=CA:FALSE', 0x1001))
    .cert;
  const variants: Record<string, Party> = {};
  if (type === 'p256') {
    for (const [i, [name, ext]] of Object.entries(VARIANTS).entries()) {
      variants[name] = await issue(
        `variant${i}`,
        f('signer.key'),
        `/O=differential/CN=${type} OCSP signer`,
        ext,
        0x3001 + i,
      );
    }
  }
  return { type, ca, signer, leaf, variants };
}

async function readParty(certFile: string, keyFile: string): Promise<Party> {
  const pem = await readFile(certFile, 'latin1');
  return {
    cert: parseCertificates(Buffer.from(pem))[0]!,
    key: createPrivateKey(await readFile(keyFile)),
    pem,
  };
}

// --- responses, built and signed here -------------------------------------------------------------

const SHA256_ALG = seq(oid(HASH_OIDS.sha256));
const PSS_PARAMS = seq(
  tlv(0xa0, SHA256_ALG),
  tlv(0xa1, seq(oid('1.2.840.113549.1.1.8'), SHA256_ALG)),
  tlv(0xa2, hex('020120')),
);
const SIG_ALG: Record<KeyType, Buffer> = {
  rsa: seq(oid('1.2.840.113549.1.1.11'), NULL),
  'rsa-pss': seq(oid('1.2.840.113549.1.1.10'), PSS_PARAMS),
  p256: seq(oid('1.2.840.10045.4.3.2')),
  p384: seq(oid('1.2.840.10045.4.3.3')),
  p521: seq(oid('1.2.840.10045.4.3.4')),
  ed25519: seq(oid('1.3.101.112')),
  ed448: seq(oid('1.3.101.113')),
};
const SIGN_HASH: Record<KeyType, string | null> = {
  rsa: 'sha256', 'rsa-pss': 'sha256', p256: 'sha256', p384: 'sha384', p521: 'sha512', ed25519: null, ed448: null,
}; // prettier-ignore

function signWith(type: KeyType, key: KeyObject, data: Buffer): Buffer {
  if (type === 'rsa-pss') {
    return sign('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  }
  return sign(SIGN_HASH[type], data, key);
}

const certId = (leaf: Certificate, ca: Certificate, hash: HashName = 'sha1', serial = leaf.serial) =>
  seq(
    seq(oid(HASH_OIDS[hash]), NULL),
    octets(digest(hash, leaf.issuerDer)),
    octets(ca.keyHash(hash)),
    tlv(0x02, serial),
  );

interface Build {
  pki: Pki;
  delegated?: boolean;
  /** The signing party (default: the CA, or the PKI's signer when delegated). */
  signer?: Party;
  /** Embedded certificates (default: the signer's when delegated, none when direct). */
  certs?: Buffer[];
  responderId?: Buffer;
  singles?: Buffer[];
  thisUpdate?: Date;
  nextUpdate?: Date | null;
  extensions?: Buffer;
  sigAlg?: Buffer;
  /** Rewrite the signed bytes (tbsResponseData) before signing. */
  tbs?: (tbs: Buffer) => Buffer;
  /** Sign otherwise than the key type's usual way. */
  rawSign?: (tbs: Buffer) => Buffer;
  signature?: (sig: Buffer) => Buffer;
  unusedBits?: number;
  /** Rewrite the BasicOCSPResponse's fields, or the whole OCSPResponse. */
  basic?: (fields: Buffer[]) => Buffer[];
  outer?: (response: Buffer) => Buffer;
}

function single(b: Build, status: Uint8Array = hex('8000'), hash: HashName = 'sha1'): Buffer {
  const thisUpdate = b.thisUpdate ?? new Date(now.getTime() - 60_000);
  const next = b.nextUpdate === undefined ? new Date(now.getTime() + 86_400_000) : b.nextUpdate;
  return seq(
    certId(b.pki.leaf, b.pki.ca.cert, hash),
    status,
    gtime(thisUpdate),
    ...(next ? [tlv(0xa0, gtime(next))] : []),
  );
}

function build(b: Build): Buffer {
  const signer = b.signer ?? (b.delegated ? b.pki.signer : b.pki.ca);
  const responderId = b.responderId ?? tlv(0xa1, signer.cert.subjectDer);
  let tbs: Buffer = seq(
    responderId,
    gtime(now),
    seq(...(b.singles ?? [single(b)])),
    ...(b.extensions ? [tlv(0xa1, b.extensions)] : []),
  );
  if (b.tbs) tbs = b.tbs(tbs);
  let sig = b.rawSign ? b.rawSign(tbs) : signWith(b.pki.type, signer.key, tbs);
  if (b.signature) sig = b.signature(sig);
  const certs = b.certs ?? (b.delegated || b.signer ? [signer.cert.der] : []);
  const sigAlg = b.sigAlg ?? SIG_ALG[b.pki.type];
  let fields = [tbs, sigAlg, bits(sig, b.unusedBits), ...(certs.length ? [tlv(0xa0, seq(...certs))] : [])];
  if (b.basic) fields = b.basic(fields);
  const response = seq(hex('0a0100'), tlv(0xa0, seq(oid('1.3.6.1.5.5.7.48.1.1'), octets(seq(...fields)))));
  return b.outer ? b.outer(response) : response;
}

/** Re-signs `cert` with its CA's key after `edit` rewrites its tbsCertificate (and maybe the outer algorithm). */
function recertify(
  pki: Pki,
  cert: Certificate,
  edit: { tbs?: (fields: Buffer[]) => Buffer[]; unused?: number; outerAlg?: Buffer },
): Buffer {
  const [tbsDer, alg] = parts(cert.der);
  const tbs = edit.tbs ? seq(...edit.tbs(parts(tbsDer!))) : tbsDer!;
  let sig = signWith(pki.type, pki.ca.key, tbs);
  if (edit.unused) sig = Buffer.concat([sig, Buffer.from([0])]);
  return seq(tbs, edit.outerAlg ?? alg!, bits(sig, edit.unused ?? 0));
}

/** tbsCertificate's extensions [3] with `edit` applied to the list of Extension encodings. */
const withExtensions = (edit: (exts: Buffer[]) => Buffer[]) => (fields: Buffer[]) =>
  fields.map((f) => (f[0] === 0xa3 ? tlv(0xa3, seq(...edit(parts(parts(f)[0]!)))) : f));

// --- the judges ------------------------------------------------------------------------------------

interface Judged {
  valid: boolean;
  code: VerdictCode | undefined;
}
function ours(der: Buffer, pki: Pki): Judged {
  const { verdict } = judgeStaple(der, { cert: pki.leaf, issuer: pki.ca.cert, now });
  return { valid: verdict.valid, code: verdict.code };
}

let fileNo = 0;
/** OpenSSL's verdict as a client's: the response verifies against the CA, no `-issuer`. */
async function opensslAccepts(der: Buffer, pki: Pki): Promise<boolean> {
  const file = path.join(work, `r${fileNo++}.der`);
  const caFile = path.join(work, `${pki.type}-ca.pem`);
  await writeFile(file, der);
  try {
    const { stderr } = await execFileAsync('openssl', [
      'ocsp',
      '-respin',
      file,
      '-CAfile',
      caFile,
      '-verify_other',
      caFile,
    ]);
    return /Response verify OK/.test(stderr);
  } catch {
    return false;
  } finally {
    await rm(file, { force: true });
  }
}

/** Runs `tasks` two at a time (the machine has two shared cores). */
async function twoAtATime<T>(tasks: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'differential-'));
  for (const type of Object.keys(KEY_TYPES) as KeyType[]) pkis[type] = await makePki(type, work);
  now = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000);
}, 120_000);
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

// --- the cases ------------------------------------------------------------------------------------

interface Case {
  name: string;
  der: () => Buffer;
  pki: () => Pki;
  /** The project's verdict: undefined for valid, else the first code. */
  code: VerdictCode | undefined;
  /** OpenSSL's. */
  openssl: 'accepts' | 'refuses';
}

const p = () => pkis.p256;
/** The same element with its outer length one octet longer than DER allows (BER). */
function berLength(der: Buffer): Buffer {
  const first = der[1]!;
  if (first < 0x80) return Buffer.concat([Buffer.from([der[0]!, 0x81, first]), der.subarray(2)]);
  return Buffer.concat([Buffer.from([der[0]!, first + 1, 0]), der.subarray(2)]);
}
const nonceExt = (critical?: Buffer) =>
  seq(seq(oid(NONCE_OID), ...(critical ? [critical] : []), octets(octets(hex('0102030405060708')))));
const otherCa = () => pkis.p384.ca.cert;

const cases: Case[] = [
  ...(Object.keys(KEY_TYPES) as KeyType[]).flatMap((type): Case[] => [
    { name: `${type}: signed by the CA`, pki: () => pkis[type], der: () => build({ pki: pkis[type] }), code: undefined, openssl: 'accepts' },
    { name: `${type}: signed by a delegated responder`, pki: () => pkis[type], der: () => build({ pki: pkis[type], delegated: true }), code: undefined, openssl: 'accepts' },
    { name: `${type}: byKey, delegated`, pki: () => pkis[type], der: () => build({ pki: pkis[type], delegated: true, responderId: tlv(0xa2, octets(pkis[type].signer.cert.keyHash('sha1'))) }), code: undefined, openssl: 'accepts' },
  ]),
  // 1. Non-DER outside and inside the signed part, extra elements.
  { name: 'outer SEQUENCE length not in its shortest form (BER)', pki: p, der: () => build({ pki: p(), outer: berLength }), code: 'not-der', openssl: 'accepts' },
  { name: 'outer SEQUENCE length one more, with a byte appended', pki: p, der: () => build({ pki: p(), outer: (r) => seq(...parts(r), hex('00')) }), code: 'not-der', openssl: 'refuses' },
  { name: 'outer SEQUENCE length one less (the last byte outside it)', pki: p, der: () => build({ pki: p(), outer: (r) => { const out = Buffer.from(r); out[out[1]! < 0x80 ? 1 : 1 + (out[1]! & 0x7f)]! -= 1; return out; } }), code: 'not-der', openssl: 'refuses' },
  { name: 'an extra element in OCSPResponse', pki: p, der: () => build({ pki: p(), outer: (r) => seq(...parts(r), hex('0500')) }), code: 'parse', openssl: 'refuses' },
  { name: 'an extra element in BasicOCSPResponse', pki: p, der: () => build({ pki: p(), basic: (f) => [...f.slice(0, 3), hex('0500')] }), code: 'parse', openssl: 'refuses' },
  { name: 'an extra element in ResponseData (signed)', pki: p, der: () => build({ pki: p(), tbs: (t) => seq(...parts(t), hex('0500')) }), code: 'parse', openssl: 'refuses' },
  { name: 'an extra element in CertID (signed)', pki: p, der: () => build({ pki: p(), singles: [seq(seq(...parts(certId(p().leaf, p().ca.cert)), hex('0500')), hex('8000'), gtime(now), tlv(0xa0, gtime(new Date(now.getTime() + 3_600_000))))] }), code: 'parse', openssl: 'refuses' },
  { name: 'an empty responseStatus', pki: p, der: () => build({ pki: p(), outer: (r) => seq(hex('0a00'), parts(r)[1]!) }), code: 'not-der', openssl: 'refuses' },
  { name: 'good as 80 01 00', pki: p, der: () => build({ pki: p(), singles: [single({ pki: p() }, hex('800100'))] }), code: 'not-der', openssl: 'refuses' },
  { name: 'good as A0 00', pki: p, der: () => build({ pki: p(), singles: [single({ pki: p() }, hex('a000'))] }), code: 'parse', openssl: 'refuses' },
  { name: 'a padded version INTEGER', pki: p, der: () => build({ pki: p(), tbs: (t) => seq(tlv(0xa0, hex('02020000')), ...parts(t)) }), code: 'not-der', openssl: 'refuses' },
  { name: 'an explicit version v1 (Go writes one; OpenSSL keeps it)', pki: p, der: () => build({ pki: p(), tbs: (t) => seq(tlv(0xa0, hex('020100')), ...parts(t)) }), code: undefined, openssl: 'accepts' },
  { name: "an extension's critical as an INTEGER", pki: p, der: () => build({ pki: p(), extensions: nonceExt(hex('0201ff')) }), code: 'parse', openssl: 'refuses' },
  { name: 'an explicit critical FALSE (DER leaves a DEFAULT out)', pki: p, der: () => build({ pki: p(), extensions: nonceExt(hex('010100')) }), code: 'not-der', openssl: 'accepts' },
  { name: 'an unknown critical response extension', pki: p, der: () => build({ pki: p(), extensions: seq(seq(oid('1.2.3.4'), hex('0101ff'), octets(NULL))) }), code: 'critical-extension', openssl: 'accepts' },
  { name: 'a nonce extension, not critical', pki: p, der: () => build({ pki: p(), extensions: nonceExt() }), code: undefined, openssl: 'accepts' },
  { name: 'RevokedInfo with an extra element', pki: p, der: () => build({ pki: p(), singles: [single({ pki: p() }, tlv(0xa1, gtime(now), hex('0500')))] }), code: 'parse', openssl: 'refuses' },
  // 2. BER inside the signed part.
  { name: 'tbsResponseData with a BER length, signed as such', pki: p, der: () => build({ pki: p(), tbs: berLength }), code: 'not-der', openssl: 'refuses' },
  // 3. Unused bits.
  { name: 'the signature BIT STRING with unused bits', pki: p, der: () => build({ pki: p(), unusedBits: 1, signature: (sig) => { sig[sig.length - 1]! &= 0xfe; return sig; } }), code: 'not-der', openssl: 'refuses' },
  { name: "the responder certificate's signature with unused bits", pki: p, der: () => build({ pki: p(), delegated: true, certs: [recertify(p(), p().signer.cert, { unused: 1 })] }), code: 'not-der', openssl: 'refuses' },
  // 4. The responder certificate as RFC 5280 and OpenSSL check it.
  ...Object.keys(VARIANTS).map((name): Case => ({ name: `a delegated responder with ${name}`, pki: p, der: () => build({ pki: p(), signer: p().variants[name] }), code: 'signer-not-authorised', openssl: VARIANT_OPENSSL[name] ?? 'refuses' })),
  { name: 'a delegated responder with an extension twice', pki: p, der: () => build({ pki: p(), delegated: true, certs: [recertify(p(), p().signer.cert, { tbs: withExtensions((e) => [...e, e[e.length - 1]!]) })] }), code: 'not-der', openssl: 'refuses' },
  { name: 'a delegated responder whose inner signature algorithm differs', pki: p, der: () => build({ pki: p(), delegated: true, certs: [recertify(p(), p().signer.cert, { outerAlg: seq(oid('1.2.840.10045.4.3.3')) })] }), code: 'not-der', openssl: 'refuses' },
  { name: 'a delegated responder with an explicit critical FALSE', pki: p, der: () => build({ pki: p(), delegated: true, certs: [recertify(p(), p().signer.cert, { tbs: withExtensions((e) => [...e, seq(oid('2.5.29.17'), hex('010100'), octets(seq(tlv(0x82, Buffer.from('x.test')))))]) })] }), code: 'not-der', openssl: 'accepts' },
  // 5. byName compared as names.
  { name: 'byName as a multi-valued RDN of the same attributes', pki: p, der: () => build({ pki: p(), delegated: true, responderId: tlv(0xa1, seq(tlv(0x31, ...parts(p().signer.cert.subjectDer).flatMap((set) => parts(set))))) }), code: 'responder-id', openssl: 'refuses' },
  { name: 'byName in other case and spacing (the same name to RFC 5280 and OpenSSL)', pki: p, der: () => build({ pki: p(), delegated: true, responderId: tlv(0xa1, seq(tlv(0x31, seq(oid('2.5.4.10'), tlv(0x13, Buffer.from(' DIFFERENTIAL ')))), tlv(0x31, seq(oid('2.5.4.3'), tlv(0x13, Buffer.from('P256  OCSP signer')))))) }), code: undefined, openssl: 'accepts' },
  // 6. Two embedded certificates for the responder's name and key.
  { name: 'two embedded signers, the first without OCSPSigning', pki: p, der: () => build({ pki: p(), delegated: true, certs: [p().variants['no OCSPSigning EKU']!.cert.der, p().signer.cert.der] }), code: 'signer-not-authorised', openssl: 'refuses' },
  { name: 'two embedded signers, the good one first', pki: p, der: () => build({ pki: p(), delegated: true, certs: [p().signer.cert.der, p().variants['no OCSPSigning EKU']!.cert.der] }), code: undefined, openssl: 'accepts' },
  // 7., 8. Times and algorithms.
  { name: 'nextUpdate before thisUpdate (OpenSSL checks times only per -cert)', pki: p, der: () => build({ pki: p(), thisUpdate: new Date(now.getTime() + 4 * 60_000), nextUpdate: new Date(now.getTime() + 2 * 60_000) }), code: 'next-update-before-this-update', openssl: 'accepts' },
  { name: 'no nextUpdate', pki: p, der: () => build({ pki: p(), nextUpdate: null }), code: 'no-next-update', openssl: 'accepts' },
  { name: 'RSASSA-PSS without parameters (signed with the SHA-1 defaults)', pki: () => pkis.rsa, der: () => build({ pki: pkis.rsa, sigAlg: seq(oid('1.2.840.113549.1.1.10')), rawSign: (t) => sign('sha1', t, { key: pkis.rsa.ca.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 20 }) }), code: 'signature-algorithm', openssl: 'refuses' },
  // 9., 11. SingleResponses.
  { name: 'good under SHA-256, revoked under SHA-1', pki: p, der: () => build({ pki: p(), singles: [single({ pki: p() }, hex('8000'), 'sha256'), single({ pki: p() }, tlv(0xa1, gtime(new Date(now.getTime() - 86_400_000))), 'sha1')] }), code: 'conflicting-responses', openssl: 'accepts' },
  { name: "a SingleResponse for another CA's certificate beside ours", pki: p, der: () => build({ pki: p(), singles: [single({ pki: p() }), seq(certId(p().leaf, otherCa()), hex('8000'), gtime(now), tlv(0xa0, gtime(new Date(now.getTime() + 3_600_000))))] }), code: 'certid-other-issuer', openssl: 'refuses' },
]; // prettier-ignore

describe('the project and OpenSSL on crafted responses, every key type', () => {
  it(`${cases.length} cases: the project's verdict, OpenSSL's, and never valid where OpenSSL refuses`, async () => {
    const built = cases.map((c) => ({ c, der: c.der(), pki: c.pki() }));
    const verdicts = built.map(({ der, pki }) => ours(der, pki));
    const judged = await twoAtATime(
      built.map(
        ({ der, pki }) =>
          () =>
            opensslAccepts(der, pki),
      ),
    );
    const table = built.map(({ c }, i) => ({
      name: c.name,
      ours: verdicts[i]!.valid ? 'valid' : verdicts[i]!.code,
      openssl: judged[i] ? 'accepts' : 'refuses',
    }));
    expect(table).toEqual(cases.map((c) => ({ name: c.name, ours: c.code ?? 'valid', openssl: c.openssl })));
    const disagreements = table.filter((row) => row.ours === 'valid' && row.openssl === 'refuses');
    expect(disagreements).toEqual([]);
  }, 60_000);
});

describe(`seeded mutants of valid responses (seed ${SEED})`, () => {
  it(`${MUTANTS} mutants: each the project calls valid, OpenSSL accepts`, async () => {
    const rand = prng(SEED);
    const seeds = (Object.keys(KEY_TYPES) as KeyType[]).flatMap((type) => [
      { pki: pkis[type], der: build({ pki: pkis[type] }) },
      { pki: pkis[type], der: build({ pki: pkis[type], delegated: true, extensions: nonceExt() }) },
    ]);
    const valid: Array<{ pki: Pki; der: Buffer; what: string }> = [];
    const codes = new Set<string>();
    for (let n = 0; n < MUTANTS; n++) {
      const seed = seeds[Math.floor(rand() * seeds.length)]!;
      const mutant = mutate(seed.der, rand);
      const verdict = ours(mutant.bytes, seed.pki);
      if (verdict.valid)
        valid.push({ pki: seed.pki, der: mutant.bytes, what: `case ${n}: ${seed.pki.type}, ${mutant.what}` });
      else codes.add(verdict.code!);
    }
    // Mutants reach several checks, not only the first one. Few stay valid: only the bytes outside
    // every signature can change unseen, and those are DER headers the strict parser reads.
    expect(codes.size, [...codes].join(', ')).toBeGreaterThanOrEqual(4);
    const judged = await twoAtATime(valid.map((m) => () => opensslAccepts(m.der, m.pki)));
    const refusedByOpenssl = valid.filter((_, i) => !judged[i]).map((m) => m.what);
    expect(refusedByOpenssl, `${valid.length} mutants valid, each checked by OpenSSL`).toEqual([]);
  }, 60_000);
});
