import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { certificateFromDer, formatName, type AlgorithmId, type Certificate } from './certificate.js';
import { formatNameDer } from './der-name.js';
import {
  bitString,
  booleanValue,
  childrenOf,
  contextTag,
  encoding,
  explicitInner,
  integerBytes,
  oidString,
  primitive,
  readRoot,
  readTlv,
  smallInteger,
  TAG,
  timeChars,
  type Tlv,
} from './der-reader.js';
import { asBuffer, hashNameForOid, strictGeneralizedTime, toArrayBuffer, type HashName } from './der.js';

export const BASIC_RESPONSE_OID = '1.3.6.1.5.5.7.48.1.1';

/** OCSPResponseStatus names (RFC 6960 §4.2.1); 4 is not used. */
const STATUS_NAMES: Record<number, ResponseStatus> = {
  0: 'successful',
  1: 'malformedRequest',
  2: 'internalError',
  3: 'tryLater',
  5: 'sigRequired',
  6: 'unauthorized',
};
export type ResponseStatus =
  | 'successful'
  | 'malformedRequest'
  | 'internalError'
  | 'tryLater'
  | 'sigRequired'
  | 'unauthorized'
  | `UNKNOWN(${number})`;

/** CRLReason names (RFC 5280 §5.3.1); 7 is not used. */
const REASON_NAMES: Record<number, string> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'cACompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise',
};

export type CertStatus = 'good' | 'revoked' | 'unknown';

export interface ExtensionInfo {
  oid: string;
  critical: boolean;
  /** The extnValue OCTET STRING's payload. */
  value: Buffer;
}

export interface SingleResponseInfo {
  certId: {
    hashOid: string;
    hash: HashName | undefined;
    issuerNameHash: Buffer;
    issuerKeyHash: Buffer;
    serial: Buffer;
  };
  certStatus: CertStatus;
  revocationTime: Date | undefined;
  revocationReason: string | undefined;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  extensions: ExtensionInfo[];
}

export type ResponderId = { byName: Buffer; name: string } | { byKey: Buffer };

export interface BasicResponse {
  tbsDer: Buffer;
  responderId: ResponderId;
  producedAt: Date;
  responses: SingleResponseInfo[];
  extensions: ExtensionInfo[];
  signatureAlgorithm: AlgorithmId;
  signature: Buffer;
  /** Certificates embedded in the response (a delegated responder's certificate, usually). */
  certs: Certificate[];
}

/** An OCSPResponse parsed once; validation and reporting read this, never the DER again. */
export interface ParsedResponse {
  der: Buffer;
  responseStatus: ResponseStatus;
  /** The responseType OID, when responseBytes is present. */
  responseType: string | undefined;
  /** Present for a successful id-pkix-ocsp-basic response. */
  basic: BasicResponse | undefined;
}

/** The one error parseOcspResponse throws: the bytes are not a well-formed OCSP response. */
export class ResponseParseError extends Error {
  override readonly name = 'ResponseParseError';
  readonly code = 'RESPONSE_PARSE';
}

/**
 * Parses a DER OCSPResponse. Throws ResponseParseError when it is not one (an HTML page, say),
 * and nothing else, whatever the bytes: times must be DER GeneralizedTime (`YYYYMMDDHHMMSSZ`).
 *
 * Two paths give the same ParsedResponse. The fast one (parseResponseFast) reads plain DER with
 * the strict reader in der-reader.ts and no asn1js at all; it answers undefined for anything it
 * does not fully understand, and then the general one (parseResponseSlow, over asn1js) parses the
 * bytes and says what is wrong. Their equivalence is tested field for field on every shared vector
 * and on a fuzz corpus (test/ocsp-response.fast-path.test.ts).
 */
export function parseOcspResponse(der: Uint8Array): ParsedResponse {
  const bytes = Buffer.from(der);
  const fast = parseResponseFast(bytes);
  if (fast) return fast;
  try {
    return parseResponse(bytes);
  } catch (err) {
    if (err instanceof ResponseParseError) throw err;
    // asn1js and pkijs throw their own messages on some malformed inputs; say it in our terms.
    throw new ResponseParseError('malformed OCSP response (a field does not decode)', { cause: err });
  }
}

/** asn1js's decoder, which throws on some malformed values (times above all) instead of reporting. */
function decode(bytes: ArrayBuffer | Uint8Array, what: string): ReturnType<typeof asn1js.fromBER> {
  try {
    return asn1js.fromBER(bytes, { parseEmbedded: false });
  } catch (err) {
    // asn1js converts times while decoding and throws "Wrong input string for conversion".
    const which = /conversion/.test(err instanceof Error ? err.message : '') ? 'a time value' : 'a value';
    throw new ResponseParseError(`${what} is not DER (${which} does not decode)`, { cause: err });
  }
}

/**
 * The general path over asn1js (it throws on bad input, not always a ResponseParseError; see
 * parseOcspResponse). Exported for the equivalence tests, which hold parseResponseFast to it.
 */
export const parseResponseSlow = parseResponse;

/**
 * The general path: the structure is walked over asn1js's decoded tree directly, without pkijs's
 * schema matching (~3× faster than pkijs). Embedded values are not decoded (asn1js 4's default):
 * the BasicOCSPResponse is split into its four fields by their DER headers, only the first three
 * are decoded, and each certificate in `certs` goes to certificateFromDer as bytes, where the
 * delegated responder's certificate, the same in every response of a fleet, is found by its hash
 * before any decoding. Anything the split does not expect (BER lengths, extra fields) takes the
 * whole BasicOCSPResponse decoded by asn1js.
 */
function parseResponse(bytes: Buffer): ParsedResponse {
  const asn = decode(toArrayBuffer(bytes), 'OCSPResponse');
  if (asn.offset === -1) throw new ResponseParseError(`not DER (${asn.result.error || 'bad encoding'})`);
  if (asn.offset !== bytes.length) throw new ResponseParseError('trailing bytes after the OCSPResponse');
  const outer = items(asn.result, asn1js.Sequence, 'OCSPResponse');
  const code = as(outer[0], asn1js.Enumerated, 'responseStatus').valueBlock.valueDec;
  const responseStatus = STATUS_NAMES[code] ?? (`UNKNOWN(${code})` as const);
  const tagged = outer[1];
  if (!tagged) return { der: bytes, responseStatus, responseType: undefined, basic: undefined };
  const responseBytes = items(explicit(tagged, 0, 'responseBytes'), asn1js.Sequence, 'ResponseBytes');
  const responseType = as(responseBytes[0], asn1js.ObjectIdentifier, 'responseType').valueBlock.toString();
  if (responseStatus !== 'successful' || responseType !== BASIC_RESPONSE_OID) {
    return { der: bytes, responseStatus, responseType, basic: undefined };
  }
  const octets = as(responseBytes[1], asn1js.OctetString, 'response');
  const inner = asBuffer(octets.valueBlock.valueHexView);
  let basic = splitBasic(inner);
  if (!basic) {
    const parsed = decode(inner, 'BasicOCSPResponse');
    if (parsed.offset === -1) throw new ResponseParseError('BasicOCSPResponse is not DER');
    const [tbs, sigAlg, sig, certsTagged] = items(parsed.result, asn1js.Sequence, 'BasicOCSPResponse');
    const certs = certsTagged
      ? items(explicit(certsTagged, 0, 'certs'), asn1js.Sequence, 'certs').map((c) => c.valueBeforeDecodeView)
      : [];
    basic = { tbs, sigAlg, sig, certs };
  }
  return { der: bytes, responseStatus, responseType, basic: parseBasic(basic) };
}

/** A BasicOCSPResponse's fields: the first three decoded, the certificates as their DER. */
interface BasicFields {
  tbs: asn1js.AsnType | undefined;
  sigAlg: asn1js.AsnType | undefined;
  sig: asn1js.AsnType | undefined;
  certs: Uint8Array[];
}

/**
 * BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature,
 * certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }, split by the DER headers so that the
 * certificates are never decoded here. Undefined when the bytes are not exactly that shape in
 * plain DER (the general path then decodes them, and says what is wrong).
 */
function splitBasic(bytes: Buffer): BasicFields | undefined {
  const outer = readTlv(bytes, 0, bytes.length);
  if (!outer || outer.tag !== 0x30 || outer.end !== bytes.length) return undefined;
  const fields = childrenOf(bytes, outer);
  if (!fields || fields.length < 3 || fields.length > 4) return undefined;
  const certs: Uint8Array[] = [];
  const certsField = fields[3];
  if (certsField) {
    const wrapped = childrenOf(bytes, certsField);
    if (certsField.tag !== 0xa0 || wrapped?.length !== 1 || wrapped[0]!.tag !== 0x30) return undefined;
    const list = childrenOf(bytes, wrapped[0]!);
    if (!list) return undefined;
    for (const cert of list) certs.push(bytes.subarray(cert.start, cert.end));
  }
  const decoded: asn1js.AsnType[] = [];
  for (const field of fields.slice(0, 3)) {
    const asn = decode(bytes.subarray(field.start, field.end), 'BasicOCSPResponse');
    if (asn.offset !== field.end - field.start) return undefined;
    decoded.push(asn.result);
  }
  return { tbs: decoded[0], sigAlg: decoded[1], sig: decoded[2], certs };
}

function parseBasic({ tbs, sigAlg, sig, certs: certDers }: BasicFields): BasicResponse {
  const data = items(tbs, asn1js.Sequence, 'tbsResponseData');
  let i = 0;
  if (isContext(data[0], 0)) i++; // version [0] EXPLICIT, v1 by default
  const rid = data[i++];
  let responderId: ResponderId;
  if (isContext(rid, 1)) {
    const name = explicit(rid, 1, 'responderID byName');
    let formatted: string;
    try {
      formatted = formatName(new pkijs.RelativeDistinguishedNames({ schema: name }));
    } catch {
      formatted = '(unparsed name)';
    }
    responderId = { byName: asBuffer(name.valueBeforeDecodeView), name: formatted };
  } else if (isContext(rid, 2)) {
    const key = as(explicit(rid, 2, 'responderID byKey'), asn1js.OctetString, 'responderID byKey');
    responderId = { byKey: asBuffer(key.valueBlock.valueHexView) };
  } else throw new ResponseParseError('responderID is neither byName [1] nor byKey [2]');
  const producedAt = time(data[i++], 'producedAt');
  const responses = items(data[i++], asn1js.Sequence, 'responses').map(parseSingle);
  const extensions = isContext(data[i], 1)
    ? parseExtensions(explicit(data[i]!, 1, 'responseExtensions'))
    : [];

  const certs: Certificate[] = [];
  for (const [index, der] of certDers.entries()) {
    try {
      certs.push(certificateFromDer(der));
    } catch (err) {
      throw new ResponseParseError(`embedded certificate ${index} does not parse: ${(err as Error).message}`);
    }
  }
  const alg = items(sigAlg, asn1js.Sequence, 'signatureAlgorithm');
  return {
    tbsDer: asBuffer(tbs!.valueBeforeDecodeView),
    responderId,
    producedAt,
    responses,
    extensions,
    signatureAlgorithm: {
      oid: as(alg[0], asn1js.ObjectIdentifier, 'signatureAlgorithm').valueBlock.toString(),
      params: alg[1] ? asBuffer(alg[1].valueBeforeDecodeView) : undefined,
    },
    signature: asBuffer(as(sig, asn1js.BitString, 'signature').valueBlock.valueHexView),
    certs,
  };
}

function parseSingle(block: asn1js.AsnType): SingleResponseInfo {
  const [certId, status, thisUpdate, ...rest] = items(block, asn1js.Sequence, 'SingleResponse');
  const [alg, nameHash, keyHash, serial] = items(certId, asn1js.Sequence, 'CertID');
  const hashOid = as(
    items(alg, asn1js.Sequence, 'CertID.hashAlgorithm')[0],
    asn1js.ObjectIdentifier,
    'hash',
  ).valueBlock.toString();
  if (!status || status.idBlock.tagClass !== 3)
    throw new ResponseParseError('certStatus is not a context tag');
  let certStatus: CertStatus;
  let revocationTime: Date | undefined;
  let revocationReason: string | undefined;
  switch (status.idBlock.tagNumber) {
    case 0:
      certStatus = 'good';
      break;
    case 1:
      certStatus = 'revoked';
      ({ revocationTime, revocationReason } = revokedInfo(status));
      break;
    case 2:
      certStatus = 'unknown';
      break;
    default:
      throw new ResponseParseError(`certStatus has an unknown tag [${status.idBlock.tagNumber}]`);
  }
  let nextUpdate: Date | undefined;
  let extensions: ExtensionInfo[] = [];
  for (const item of rest) {
    if (isContext(item, 0)) nextUpdate = time(explicit(item, 0, 'nextUpdate'), 'nextUpdate');
    else if (isContext(item, 1)) extensions = parseExtensions(explicit(item, 1, 'singleExtensions'));
    else throw new ResponseParseError('unexpected field in SingleResponse');
  }
  return {
    certId: {
      hashOid,
      hash: hashNameForOid(hashOid),
      issuerNameHash: asBuffer(as(nameHash, asn1js.OctetString, 'issuerNameHash').valueBlock.valueHexView),
      issuerKeyHash: asBuffer(as(keyHash, asn1js.OctetString, 'issuerKeyHash').valueBlock.valueHexView),
      serial: asBuffer(as(serial, asn1js.Integer, 'serialNumber').valueBlock.valueHexView),
    },
    certStatus,
    revocationTime,
    revocationReason,
    thisUpdate: time(thisUpdate, 'thisUpdate'),
    nextUpdate,
    extensions,
  };
}

function parseExtensions(block: asn1js.AsnType): ExtensionInfo[] {
  return items(block, asn1js.Sequence, 'Extensions').map((ext) => {
    const fields = items(ext, asn1js.Sequence, 'Extension');
    const oid = as(fields[0], asn1js.ObjectIdentifier, 'extnID').valueBlock.toString();
    const critical = fields[1] instanceof asn1js.Boolean ? fields[1].valueBlock.value : false;
    const value = as(fields[fields.length - 1], asn1js.OctetString, 'extnValue');
    return { oid, critical, value: asBuffer(value.valueBlock.valueHexView) };
  });
}

/** A GeneralizedTime in the only form DER allows (RFC 5280 §4.1.2.5.2), else a parse error naming the field. */
function time(block: asn1js.AsnType | undefined, what: string): Date {
  const raw = Buffer.from(as(block, asn1js.GeneralizedTime, what).valueBlock.valueHexView).toString('latin1');
  const date = strictGeneralizedTime(raw);
  if (!date) {
    throw new ResponseParseError(
      `${what} ${JSON.stringify(raw.slice(0, 32))} is not a UTC time of the form YYYYMMDDHHMMSSZ`,
    );
  }
  return date;
}

function as<T extends asn1js.AsnType>(
  block: asn1js.AsnType | undefined,
  type: new (...args: never[]) => T,
  what: string,
): T {
  if (!(block instanceof type)) throw new ResponseParseError(`${what}: expected ${type.name}`);
  return block;
}

function items(
  block: asn1js.AsnType | undefined,
  type: typeof asn1js.Sequence,
  what: string,
): asn1js.AsnType[] {
  return as(block, type, what).valueBlock.value;
}

function isContext(block: asn1js.AsnType | undefined, tag: number): block is asn1js.Constructed {
  return !!block && block.idBlock.tagClass === 3 && block.idBlock.tagNumber === tag;
}

/** The single value inside an EXPLICIT context tag. */
function explicit(block: asn1js.AsnType, tag: number, what: string): asn1js.AsnType {
  const inner = isContext(block, tag) ? (block as asn1js.Constructed).valueBlock.value : undefined;
  if (!inner || inner.length !== 1) throw new ResponseParseError(`${what}: expected [${tag}] EXPLICIT`);
  return inner[0]!;
}

/** RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL } */
function revokedInfo(block: asn1js.AsnType): { revocationTime: Date; revocationReason: string | undefined } {
  // [1] IMPLICIT RevokedInfo arrives as a constructed context block whose content asn1js has decoded.
  const [timeBlock, reasonBlock] = (block as asn1js.Constructed).valueBlock?.value ?? [];
  if (!(timeBlock instanceof asn1js.GeneralizedTime)) {
    throw new ResponseParseError('revoked certStatus without a GeneralizedTime revocationTime');
  }
  let revocationReason: string | undefined;
  if (reasonBlock) {
    const reason = (reasonBlock as asn1js.Constructed).valueBlock?.value?.[0];
    if (!(reason instanceof asn1js.Enumerated)) {
      throw new ResponseParseError('revocationReason is not an ENUMERATED');
    }
    const code = reason.valueBlock.valueDec;
    revocationReason = REASON_NAMES[code] ?? `reason(${code})`;
  }
  return { revocationTime: time(timeBlock, 'revocationTime'), revocationReason };
}

// --- The fast path: plain DER read with der-reader.ts, no asn1js ---------------------------------

/**
 * asn1js's limits (fromBER's defaults): content longer than 16 MiB or more than 10 000 decoded
 * nodes in one decode is an error on the general path, so the fast path must not accept it.
 */
const ASN1JS_MAX_CONTENT = 16_777_216;
const ASN1JS_MAX_NODES = 10_000;
/** How deep the fast path follows parameters it only copies (asn1js still decodes them). */
const MAX_PARAMS_DEPTH = 8;

/**
 * The ParsedResponse the general path gives for these bytes, read with the strict DER reader only,
 * or undefined when the bytes are anything but the plain DER this reading fully understands (BER,
 * non-minimal encodings, fields out of order or unexpected, a name asn1js would render otherwise, a time not in RFC 5280's form, a certificate that does not parse…). Never throws and
 * never guesses: undefined sends the bytes to the general path, which gives the result or the error.
 */
export function parseResponseFast(bytes: Buffer): ParsedResponse | undefined {
  try {
    return fastResponse(bytes);
  } catch {
    return undefined; // not expected (the reader does not throw); the general path decides
  }
}

function fastResponse(bytes: Buffer): ParsedResponse | undefined {
  if (bytes.length > ASN1JS_MAX_CONTENT) return undefined;
  const outer = childrenOf(bytes, readRoot(bytes, TAG.SEQUENCE));
  if (!outer || outer.length < 1 || outer.length > 2) return undefined;
  const code = enumeratedValue(bytes, outer[0]);
  if (code === undefined) return undefined;
  const responseStatus = STATUS_NAMES[code] ?? (`UNKNOWN(${code})` as const);
  if (outer.length === 1) return { der: bytes, responseStatus, responseType: undefined, basic: undefined };
  const responseBytes = sequenceItems(bytes, explicitInner(bytes, outer[1], 0));
  if (responseBytes?.length !== 2) return undefined;
  const responseType = oidString(bytes, responseBytes[0]);
  const response = primitive(bytes, responseBytes[1], TAG.OCTET_STRING);
  if (responseType === undefined || !response) return undefined;
  if (responseStatus !== 'successful' || responseType !== BASIC_RESPONSE_OID) {
    return { der: bytes, responseStatus, responseType, basic: undefined };
  }
  const basic = fastBasic(response);
  return basic && { der: bytes, responseStatus, responseType, basic };
}

/**
 * BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT STRING,
 * certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }. `bytes` is the response OCTET STRING's
 * payload; every Buffer returned is a view on it.
 */
function fastBasic(bytes: Buffer): BasicResponse | undefined {
  const fields = childrenOf(bytes, readRoot(bytes, TAG.SEQUENCE));
  if (!fields || fields.length < 3 || fields.length > 4) return undefined;
  const [tbs, sigAlg, sig, certsField] = fields as [Tlv, Tlv, Tlv, Tlv | undefined];
  if (!withinNodeLimit(bytes, tbs) || !withinNodeLimit(bytes, sigAlg)) return undefined;
  const data = fastTbs(bytes, tbs);
  const signatureAlgorithm = algorithm(bytes, sigAlg);
  const signature = bitString(bytes, sig);
  if (!data || !signatureAlgorithm || !signature) return undefined;
  const certs: Certificate[] = [];
  if (certsField) {
    const list = sequenceItems(bytes, explicitInner(bytes, certsField, 0));
    if (!list) return undefined;
    for (const cert of list) {
      try {
        certs.push(certificateFromDer(encoding(bytes, cert)));
      } catch {
        return undefined; // the general path says which certificate and why
      }
    }
  }
  return { ...data, signatureAlgorithm, signature: signature.bits, certs };
}

/**
 * ResponseData ::= SEQUENCE { version [0] EXPLICIT INTEGER DEFAULT v1, responderID, producedAt,
 * responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL },
 * fields in that order and nothing else. An explicit v1 (Go's x/crypto/ocsp writes one) is read
 * like the general path reads it: ignored, whatever the INTEGER.
 */
function fastTbs(
  bytes: Buffer,
  tbs: Tlv,
): Pick<BasicResponse, 'tbsDer' | 'responderId' | 'producedAt' | 'responses' | 'extensions'> | undefined {
  const data = sequenceItems(bytes, tbs);
  if (!data) return undefined;
  let i = 0;
  if (data[0]?.tag === contextTag(0, true)) {
    if (!integerBytes(bytes, explicitInner(bytes, data[0], 0))) return undefined;
    i++;
  }
  const responderId = fastResponderId(bytes, data[i++]);
  const producedAt = generalizedTime(bytes, data[i++]);
  const singles = sequenceItems(bytes, data[i++]);
  if (!responderId || !producedAt || !singles) return undefined;
  const responses: SingleResponseInfo[] = [];
  for (const single of singles) {
    const info = fastSingle(bytes, single);
    if (!info) return undefined;
    responses.push(info);
  }
  let extensions: ExtensionInfo[] | undefined = [];
  if (data[i]) extensions = fastExtensions(bytes, explicitInner(bytes, data[i++], 1));
  if (!extensions || i !== data.length) return undefined;
  return { tbsDer: encoding(bytes, tbs), responderId, producedAt, responses, extensions };
}

/** ResponderID ::= CHOICE { byName [1] EXPLICIT Name, byKey [2] EXPLICIT OCTET STRING }. */
function fastResponderId(bytes: Buffer, tlv: Tlv | undefined): ResponderId | undefined {
  if (tlv?.tag === contextTag(1, true)) {
    const name = explicitInner(bytes, tlv, 1);
    const formatted = name && formatNameDer(bytes, name);
    return name && formatted !== undefined ? { byName: encoding(bytes, name), name: formatted } : undefined;
  }
  const key = primitive(bytes, explicitInner(bytes, tlv, 2), TAG.OCTET_STRING);
  return key && { byKey: key };
}

/**
 * SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT OPTIONAL,
 * singleExtensions [1] EXPLICIT OPTIONAL }; CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash,
 * issuerKeyHash, serialNumber }; certStatus good [0] IMPLICIT NULL | revoked [1] IMPLICIT
 * RevokedInfo | unknown [2] IMPLICIT NULL.
 */
function fastSingle(bytes: Buffer, tlv: Tlv): SingleResponseInfo | undefined {
  const fields = sequenceItems(bytes, tlv);
  if (!fields || fields.length < 3 || fields.length > 5) return undefined;
  const [certIdTlv, status, thisUpdateTlv, ...rest] = fields as [Tlv, Tlv, Tlv, ...Tlv[]];
  const certId = sequenceItems(bytes, certIdTlv);
  if (certId?.length !== 4) return undefined;
  const hash = algorithm(bytes, certId[0]!);
  const issuerNameHash = primitive(bytes, certId[1], TAG.OCTET_STRING);
  const issuerKeyHash = primitive(bytes, certId[2], TAG.OCTET_STRING);
  const serial = integerBytes(bytes, certId[3]);
  const thisUpdate = generalizedTime(bytes, thisUpdateTlv);
  if (!hash || !issuerNameHash || !issuerKeyHash || !serial || !thisUpdate) return undefined;

  let certStatus: CertStatus;
  let revocationTime: Date | undefined;
  let revocationReason: string | undefined;
  const empty = status.end === status.contentStart;
  if (status.tag === contextTag(0, false) && empty) certStatus = 'good';
  else if (status.tag === contextTag(2, false) && empty) certStatus = 'unknown';
  else if (status.tag === contextTag(1, true)) {
    // RevokedInfo ::= SEQUENCE { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
    const info = childrenOf(bytes, status);
    if (!info || info.length < 1 || info.length > 2) return undefined;
    certStatus = 'revoked';
    revocationTime = generalizedTime(bytes, info[0]);
    if (!revocationTime) return undefined;
    if (info[1]) {
      const code = enumeratedValue(bytes, explicitInner(bytes, info[1], 0));
      if (code === undefined) return undefined;
      revocationReason = REASON_NAMES[code] ?? `reason(${code})`;
    }
  } else return undefined;

  let nextUpdate: Date | undefined;
  let extensions: ExtensionInfo[] | undefined = [];
  let r = 0;
  if (rest[r]?.tag === contextTag(0, true)) {
    nextUpdate = generalizedTime(bytes, explicitInner(bytes, rest[r++], 0));
    if (!nextUpdate) return undefined;
  }
  if (rest[r]) extensions = fastExtensions(bytes, explicitInner(bytes, rest[r++], 1));
  if (!extensions || r !== rest.length) return undefined;
  return {
    certId: {
      hashOid: hash.oid,
      hash: hashNameForOid(hash.oid),
      issuerNameHash,
      issuerKeyHash,
      serial,
    },
    certStatus,
    revocationTime,
    revocationReason,
    thisUpdate,
    nextUpdate,
    extensions,
  };
}

/**
 * Extensions ::= SEQUENCE OF SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET
 * STRING }. An explicit FALSE (DER omits a DEFAULT value) reads as the general path reads it: false.
 */
function fastExtensions(bytes: Buffer, tlv: Tlv | undefined): ExtensionInfo[] | undefined {
  const list = sequenceItems(bytes, tlv);
  if (!list) return undefined;
  const out: ExtensionInfo[] = [];
  for (const ext of list) {
    const fields = sequenceItems(bytes, ext);
    if (!fields || fields.length < 2 || fields.length > 3) return undefined;
    const oid = oidString(bytes, fields[0]);
    const critical = fields.length === 3 ? booleanValue(bytes, fields[1]) : false;
    const value = primitive(bytes, fields[fields.length - 1], TAG.OCTET_STRING);
    if (oid === undefined || critical === undefined || !value) return undefined;
    out.push({ oid, critical, value });
  }
  return out;
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }, params as their DER. */
function algorithm(bytes: Buffer, tlv: Tlv): AlgorithmId | undefined {
  const fields = sequenceItems(bytes, tlv);
  if (!fields || fields.length < 1 || fields.length > 2) return undefined;
  const oid = oidString(bytes, fields[0]);
  const params = fields[1];
  if (oid === undefined || (params && !plainParams(bytes, params, 0))) return undefined;
  return { oid, params: params && encoding(bytes, params) };
}

/**
 * Parameters the fast path copies without reading, but which asn1js decodes on the general path:
 * only types whose asn1js decoding cannot fail or differ (NULL, BOOLEAN, INTEGER, OID, OCTET
 * STRING, SEQUENCE, SET, context tags), all strict DER, a few levels deep. Enough for NULL and the
 * RSASSA-PSS parameters; anything else goes the general way.
 */
function plainParams(bytes: Buffer, tlv: Tlv, depth: number): boolean {
  switch (tlv.tag) {
    case TAG.NULL:
      return tlv.end === tlv.contentStart;
    case TAG.BOOLEAN:
      return booleanValue(bytes, tlv) !== undefined;
    case TAG.INTEGER:
      return integerBytes(bytes, tlv) !== undefined;
    case TAG.OID:
      return oidString(bytes, tlv) !== undefined;
    case TAG.OCTET_STRING:
      return true;
  }
  if ((tlv.tag & 0xc0) === 0x80 && (tlv.tag & 0x20) === 0) return true; // [n] primitive: raw bytes
  if (tlv.tag !== TAG.SEQUENCE && tlv.tag !== TAG.SET && (tlv.tag & 0xe0) !== 0xa0) return false;
  if (depth >= MAX_PARAMS_DEPTH) return false;
  const children = childrenOf(bytes, tlv);
  return !!children && children.every((child) => plainParams(bytes, child, depth + 1));
}

/** The items of a SEQUENCE (or SEQUENCE OF). */
function sequenceItems(bytes: Buffer, tlv: Tlv | undefined): Tlv[] | undefined {
  return tlv?.tag === TAG.SEQUENCE ? childrenOf(bytes, tlv) : undefined;
}

/** An ENUMERATED as asn1js's valueDec reads it (non-negative, minimal, 1–3 octets; see smallInteger). */
function enumeratedValue(bytes: Buffer, tlv: Tlv | undefined): number | undefined {
  return smallInteger(bytes, tlv, TAG.ENUMERATED);
}

/** A GeneralizedTime in RFC 5280's form (strictGeneralizedTime), else undefined. */
function generalizedTime(bytes: Buffer, tlv: Tlv | undefined): Date | undefined {
  const chars = timeChars(bytes, tlv, TAG.GENERALIZED_TIME);
  return chars === undefined ? undefined : strictGeneralizedTime(chars);
}

/**
 * Whether asn1js's node limit (one per TLV it decodes) holds for this element: always under 2
 * bytes per TLV, so only a long element (thousands of SingleResponses) is counted.
 */
function withinNodeLimit(bytes: Buffer, tlv: Tlv): boolean {
  if (tlv.end - tlv.start <= 2 * ASN1JS_MAX_NODES) return true;
  let nodes = 0;
  const count = (parent: Tlv): boolean => {
    if (++nodes > ASN1JS_MAX_NODES) return false;
    if ((parent.tag & 0x20) === 0) return true;
    const children = childrenOf(bytes, parent);
    return !!children && children.every(count);
  };
  return count(tlv);
}
