import { createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { asBuffer, digest, looksLikePem, pemBlocks, serialHex, toArrayBuffer } from './der.js';

const OID = {
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocsp: '1.3.6.1.5.5.7.48.1',
  caIssuers: '1.3.6.1.5.5.7.48.2',
  tlsFeature: '1.3.6.1.5.5.7.1.24',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
} as const;

/** id-kp-OCSPSigning: a delegated responder certificate must carry it (RFC 6960 §4.2.2.2). */
export const OCSP_SIGNING_EKU = '1.3.6.1.5.5.7.3.9';

/** TLS Feature value 5 = status_request: the "must-staple" flag (RFC 7633). */
const STATUS_REQUEST = 5;

const NAME_LABELS: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
};

/**
 * An X.509 certificate, parsed once, with the facts the renewer needs as plain values. The pkijs
 * object stays reachable for rare needs; everything else is Buffers, strings and Dates.
 */
export class Certificate {
  readonly der: Buffer;
  readonly asn: pkijs.Certificate;
  /** The serial number's INTEGER content bytes, exactly as encoded. */
  readonly serial: Buffer;
  /** Upper-case hex of the serial (openssl's rendering). */
  readonly serialHex: string;
  readonly subjectDer: Buffer;
  readonly issuerDer: Buffer;
  readonly subject: string;
  readonly issuer: string;
  /** The subjectPublicKey BIT STRING's value: what CertID.issuerKeyHash and byKey hash. */
  readonly publicKeyBits: Buffer;
  readonly spkiDer: Buffer;
  readonly tbsDer: Buffer;
  readonly signatureAlgorithm: AlgorithmId;
  readonly signature: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly ocspUrls: string[];
  readonly caIssuersUrls: string[];
  readonly mustStaple: boolean;
  readonly isCA: boolean;
  /** Extended key usage OIDs, or undefined when the extension is absent. */
  readonly extKeyUsage: string[] | undefined;
  readonly subjectKeyId: Buffer | undefined;
  readonly authorityKeyId: Buffer | undefined;
  readonly sha256: string;
  private keyObject: KeyObject | undefined;
  private readonly keyHashes = new Map<string, Buffer>();

  constructor(der: Uint8Array) {
    this.der = Buffer.from(der);
    const asn = asn1js.fromBER(toArrayBuffer(this.der));
    if (asn.offset === -1) throw new Error(`not DER: ${asn.result.error}`);
    this.asn = new pkijs.Certificate({ schema: asn.result });
    const cert = this.asn;
    this.serial = asBuffer(cert.serialNumber.valueBlock.valueHexView);
    this.serialHex = serialHex(this.serial);
    // The names exactly as encoded (pkijs keeps them), not re-encoded: CertID hashes these bytes.
    this.subjectDer = nameDer(cert.subject);
    this.issuerDer = nameDer(cert.issuer);
    this.subject = formatName(cert.subject);
    this.issuer = formatName(cert.issuer);
    this.publicKeyBits = asBuffer(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
    this.spkiDer = asBuffer(cert.subjectPublicKeyInfo.toSchema().toBER());
    this.tbsDer = asBuffer(cert.tbsView);
    this.signatureAlgorithm = algorithmId(cert.signatureAlgorithm);
    this.signature = asBuffer(cert.signatureValue.valueBlock.valueHexView);
    this.notBefore = cert.notBefore.value;
    this.notAfter = cert.notAfter.value;
    this.sha256 = digest('sha256', this.der).toString('hex');

    const ocspUrls: string[] = [];
    const caIssuersUrls: string[] = [];
    let mustStaple = false;
    let isCA = false;
    let extKeyUsage: string[] | undefined;
    let subjectKeyId: Buffer | undefined;
    let authorityKeyId: Buffer | undefined;
    for (const ext of cert.extensions ?? []) {
      const value = ext.parsedValue as unknown;
      switch (ext.extnID) {
        case OID.authorityInfoAccess:
          for (const desc of (value as pkijs.InfoAccess | undefined)?.accessDescriptions ?? []) {
            if (desc.accessLocation.type !== 6) continue; // uniformResourceIdentifier
            const url = String(desc.accessLocation.value);
            if (desc.accessMethod === OID.ocsp) ocspUrls.push(url);
            if (desc.accessMethod === OID.caIssuers) caIssuersUrls.push(url);
          }
          break;
        case OID.tlsFeature:
          mustStaple = tlsFeatures(ext).includes(STATUS_REQUEST);
          break;
        case OID.basicConstraints:
          isCA = (value as pkijs.BasicConstraints | undefined)?.cA === true;
          break;
        case OID.extKeyUsage:
          extKeyUsage = [...((value as pkijs.ExtKeyUsage | undefined)?.keyPurposes ?? [])];
          break;
        case OID.subjectKeyIdentifier:
          if (value instanceof asn1js.OctetString) subjectKeyId = asBuffer(value.valueBlock.valueHexView);
          break;
        case OID.authorityKeyIdentifier: {
          const keyId = (value as pkijs.AuthorityKeyIdentifier | undefined)?.keyIdentifier;
          if (keyId) authorityKeyId = asBuffer(keyId.valueBlock.valueHexView);
          break;
        }
      }
    }
    this.ocspUrls = ocspUrls;
    this.caIssuersUrls = caIssuersUrls;
    this.mustStaple = mustStaple;
    this.isCA = isCA;
    this.extKeyUsage = extKeyUsage;
    this.subjectKeyId = subjectKeyId;
    this.authorityKeyId = authorityKeyId;
  }

  /** The public key as a node KeyObject, built once. */
  get publicKey(): KeyObject {
    this.keyObject ??= createPublicKey({ key: this.spkiDer, format: 'der', type: 'spki' });
    return this.keyObject;
  }

  /** Hash of the public key bits (CertID.issuerKeyHash, ResponderID byKey), memoised per algorithm. */
  keyHash(hash: 'sha1' | 'sha256' | 'sha384' | 'sha512'): Buffer {
    let value = this.keyHashes.get(hash);
    if (!value) {
      value = digest(hash, this.publicKeyBits);
      this.keyHashes.set(hash, value);
    }
    return value;
  }

  /**
   * Whether this certificate's subject is the name `cert` gives as its issuer: the same bytes, or
   * the same attributes and values in other string types (RFC 5280 §7.1 compares names, not
   * encodings). Callers still check a signature, so a loose match can never authorise alone.
   */
  issued(cert: Certificate): boolean {
    return this.subjectDer.equals(cert.issuerDer) || this.subject.toLowerCase() === cert.issuer.toLowerCase();
  }

  isValidAt(at: Date): boolean {
    return this.notBefore.getTime() <= at.getTime() && at.getTime() <= this.notAfter.getTime();
  }
}

export interface AlgorithmId {
  oid: string;
  /** DER of the parameters, when present. */
  params: Buffer | undefined;
}

export function algorithmId(alg: pkijs.AlgorithmIdentifier): AlgorithmId {
  const params = alg.algorithmParams as asn1js.BaseBlock | undefined;
  return {
    oid: alg.algorithmId,
    params: params && params.toBER ? asBuffer(params.toBER()) : undefined,
  };
}

function nameDer(name: pkijs.RelativeDistinguishedNames): Buffer {
  return name.valueBeforeDecode.byteLength
    ? Buffer.from(name.valueBeforeDecode)
    : asBuffer(name.toSchema().toBER());
}

/** A distinguished name as "CN=…,O=…,C=…" (most specific first, like openssl -nameopt RFC2253). */
export function formatName(name: pkijs.RelativeDistinguishedNames): string {
  return [...name.typesAndValues]
    .reverse()
    .map((tv) => {
      const label = NAME_LABELS[tv.type] ?? tv.type;
      const raw = (tv.value as { valueBlock?: { value?: unknown } }).valueBlock?.value;
      return `${label}=${typeof raw === 'string' ? raw : '#'}`;
    })
    .join(',');
}

function tlsFeatures(ext: pkijs.Extension): number[] {
  const asn = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView);
  if (asn.offset === -1 || !(asn.result instanceof asn1js.Sequence)) return [];
  return asn.result.valueBlock.value
    .filter((item): item is asn1js.Integer => item instanceof asn1js.Integer)
    .map((item) => item.valueBlock.valueDec);
}

/**
 * All certificates in a file: a PEM bundle with any number of CERTIFICATE blocks (other blocks,
 * such as private keys, are ignored and never kept), or a single DER certificate. Throws when the
 * file holds no certificate or a certificate block does not parse.
 */
export function parseCertificates(bytes: Uint8Array): Certificate[] {
  if (!looksLikePem(bytes)) return [certificateFromDer(bytes)];
  const certs = pemBlocks(Buffer.from(bytes).toString('latin1'))
    .filter((block) => block.label === 'CERTIFICATE' || block.label === 'X509 CERTIFICATE')
    .map((block, index) => {
      try {
        return certificateFromDer(block.der);
      } catch (err) {
        throw new Error(`certificate block ${index + 1} does not parse: ${(err as Error).message}`, {
          cause: err,
        });
      }
    });
  if (certs.length === 0) throw new Error('no CERTIFICATE block found');
  return certs;
}

/**
 * A parsed certificate, shared by every bundle that carries the same bytes: the intermediate in
 * ten thousand bundles is parsed once (an asn1js BER decode and the pkijs schema walk, per
 * certificate). Certificate objects are immutable, so sharing them is safe.
 */
export function certificateFromDer(der: Uint8Array): Certificate {
  const key = Buffer.from(der).toString('base64');
  let cert = parsedCache.get(key);
  if (!cert) {
    cert = new Certificate(der);
    if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value!);
  } else parsedCache.delete(key); // re-insert below: most recently used last
  parsedCache.set(key, cert);
  return cert;
}
const PARSED_CACHE_SIZE = 512;
const parsedCache = new Map<string, Certificate>();

/** Empties the parsed-certificate cache (benchmarks measure cold parsing with it). */
export function clearCertificateCache(): void {
  parsedCache.clear();
}

/**
 * Certificates from a caIssuers download: DER, PEM, or a PKCS#7 "certs-only" SignedData (RFC 5280
 * §4.2.2.1 allows both .cer and .p7c).
 */
export function parseIssuerDownload(bytes: Uint8Array): Certificate[] {
  if (looksLikePem(bytes)) {
    const blocks = pemBlocks(Buffer.from(bytes).toString('latin1'));
    const pkcs7 = blocks.find((b) => b.label === 'PKCS7');
    if (pkcs7) return certificatesFromPkcs7(pkcs7.der);
    return parseCertificates(bytes);
  }
  try {
    return [new Certificate(bytes)];
  } catch (certErr) {
    try {
      return certificatesFromPkcs7(bytes);
    } catch {
      throw certErr;
    }
  }
}

function certificatesFromPkcs7(der: Uint8Array): Certificate[] {
  const asn = asn1js.fromBER(toArrayBuffer(der));
  if (asn.offset === -1) throw new Error('not DER');
  const info = new pkijs.ContentInfo({ schema: asn.result });
  if (info.contentType !== pkijs.ContentInfo.SIGNED_DATA) throw new Error('PKCS#7 is not SignedData');
  const signed = new pkijs.SignedData({ schema: info.content });
  const certs = (signed.certificates ?? []).filter(
    (c): c is pkijs.Certificate => c instanceof pkijs.Certificate,
  );
  if (certs.length === 0) throw new Error('PKCS#7 holds no certificate');
  return certs.map((c) => new Certificate(asBuffer(c.toSchema().toBER())));
}
