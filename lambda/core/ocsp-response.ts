import { certificateFromDer, type Certificate } from './certificate.js';
import type { AlgorithmId } from './certificate-fields.js';
import { formatNameDer } from './der-name.js';
import {
  bitString,
  booleanValue,
  contextTag,
  encoding,
  integerBytes,
  isStrictDer,
  oidString,
  readTlv,
  smallInteger,
  TAG,
  timeChars,
  tlvProblem,
  type Tlv,
} from './der-reader.js';
import { hashNameForOid, strictGeneralizedTime } from './der.js';
import { CertificateParseError, ResponseParseError } from './errors.js';
import type {
  BasicResponse,
  ExtensionInfo,
  ParsedResponse,
  ResponderId,
  ResponseStatus,
  SingleResponseInfo,
} from './ocsp-response-types.js';

export type * from './ocsp-response-types.js';

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

/**
 * Parses a DER OCSPResponse with the strict DER reader (der-reader.ts), the only reader there is:
 * canonical DER with exactly RFC 6960's fields, or ResponseParseError (and nothing else, whatever
 * the bytes) naming the field and the byte where it breaks. Embedded certificates must be DER too
 * (certificateFromDer). Every Buffer in the result is a view on one copy of the bytes; tbsDer is
 * exactly the bytes the signature is over, and being DER they are what OpenSSL verifies too (it
 * re-encodes what it decoded before verifying).
 */
export function parseOcspResponse(der: Uint8Array): ParsedResponse {
  const bytes = Buffer.from(der);
  return readResponse(bytes);
}

function notDer(what: string, at: number, why: string): never {
  throw new ResponseParseError(`not DER: ${what} at byte ${at} ${why}`, 'not-der');
}

function structure(message: string): never {
  throw new ResponseParseError(message, 'parse');
}

const TYPE_NAMES: Record<number, string> = {
  [TAG.BOOLEAN]: 'a BOOLEAN',
  [TAG.INTEGER]: 'an INTEGER',
  [TAG.BIT_STRING]: 'a BIT STRING',
  [TAG.OCTET_STRING]: 'an OCTET STRING',
  [TAG.NULL]: 'a NULL',
  [TAG.OID]: 'an OBJECT IDENTIFIER',
  [TAG.ENUMERATED]: 'an ENUMERATED',
  [TAG.GENERALIZED_TIME]: 'a GeneralizedTime',
  [TAG.SEQUENCE]: 'a SEQUENCE',
};

/** The TLV that exactly fills [start, end) (the whole response, or an OCTET STRING's payload). */
function root(bytes: Buffer, start: number, end: number, what: string): Tlv {
  const tlv = readTlv(bytes, start, end);
  if (!tlv) notDer(what, start, `is not a DER element: ${tlvProblem(bytes, start, end)}`);
  if (tlv.end !== end)
    notDer(what, start, `is followed by ${end - tlv.end} bytes of trailing data (from byte ${tlv.end})`);
  return tlv;
}

/** A constructed TLV's children, every header strict DER, exactly filling it. */
function children(bytes: Buffer, tlv: Tlv, what: string): Tlv[] {
  if ((tlv.tag & 0x20) === 0) structure(`${what} at byte ${tlv.start} is not constructed`);
  const out: Tlv[] = [];
  for (let at = tlv.contentStart; at < tlv.end;) {
    const child = readTlv(bytes, at, tlv.end);
    if (!child)
      notDer(`an element of ${what}`, at, `is not a DER element: ${tlvProblem(bytes, at, tlv.end)}`);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** The items of the SEQUENCE `tlv`, between `min` and `max` of them. */
function sequence(bytes: Buffer, tlv: Tlv | undefined, what: string, min: number, max: number): Tlv[] {
  const t = typed(tlv, TAG.SEQUENCE, what);
  const items = children(bytes, t, what);
  if (items.length < min)
    structure(`${what} at byte ${t.start} has ${items.length} fields, fewer than ${min}`);
  if (items.length > max) {
    structure(
      `${what} at byte ${t.start} has ${items.length} fields, more than ${max} (an extra element at byte ${items[max]!.start})`,
    );
  }
  return items;
}

/** `tlv` when it is present with tag `tag`, else a parse error naming the field. */
function typed(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv) structure(`${what} is missing`);
  if (tlv.tag !== tag) {
    structure(
      `${what} at byte ${tlv.start} is not ${TYPE_NAMES[tag] ?? `[${tag & 0x1f}]`} (tag 0x${tlv.tag.toString(16).padStart(2, '0')})`,
    );
  }
  return tlv;
}

/** A value read by `read` from a field of type `tag`: a parse error for another type, not-der for a non-DER value. */
function value<T>(
  bytes: Buffer,
  tlv: Tlv | undefined,
  tag: number,
  what: string,
  read: (bytes: Buffer, tlv: Tlv) => T | undefined,
  form: string,
): T {
  const t = typed(tlv, tag, what);
  const v = read(bytes, t);
  if (v === undefined) notDer(what, t.start, `is not ${form}`);
  return v;
}

/** The single TLV inside an EXPLICIT [n]. */
function explicit(bytes: Buffer, tlv: Tlv, n: number, what: string): Tlv {
  const inner = children(bytes, typed(tlv, contextTag(n, true), what), what);
  if (inner.length !== 1) structure(`${what} at byte ${tlv.start} holds ${inner.length} elements, not one`);
  return inner[0]!;
}

const readEnumerated = (bytes: Buffer, tlv: Tlv) => smallInteger(bytes, tlv, TAG.ENUMERATED);
const readOid = (bytes: Buffer, tlv: Tlv) => oidString(bytes, tlv);
const readOctets = (bytes: Buffer, tlv: Tlv) => bytes.subarray(tlv.contentStart, tlv.end);
const readInteger = (bytes: Buffer, tlv: Tlv) => integerBytes(bytes, tlv);
const readTime = (bytes: Buffer, tlv: Tlv) => {
  const chars = timeChars(bytes, tlv, TAG.GENERALIZED_TIME);
  return chars === undefined ? undefined : strictGeneralizedTime(chars);
};
const TIME_FORM = 'a UTC time of the form YYYYMMDDHHMMSSZ';

/** A GeneralizedTime in RFC 5280's form, the characters quoted when they are not. */
function time(bytes: Buffer, tlv: Tlv | undefined, what: string): Date {
  const t = typed(tlv, TAG.GENERALIZED_TIME, what);
  const date = readTime(bytes, t);
  if (!date) {
    const raw = bytes.subarray(t.contentStart, Math.min(t.end, t.contentStart + 32)).toString('latin1');
    notDer(what, t.start, `(${JSON.stringify(raw)}) is not ${TIME_FORM}`);
  }
  return date;
}

/** OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }. */
function readResponse(bytes: Buffer): ParsedResponse {
  if (bytes.length === 0) structure('the data is empty');
  const outer = sequence(bytes, root(bytes, 0, bytes.length, 'OCSPResponse'), 'OCSPResponse', 1, 2);
  const code = value(
    bytes,
    outer[0],
    TAG.ENUMERATED,
    'responseStatus',
    readEnumerated,
    'a small DER ENUMERATED',
  );
  const responseStatus = STATUS_NAMES[code] ?? (`UNKNOWN(${code})` as const);
  if (outer.length === 1) return { der: bytes, responseStatus, responseType: undefined, basic: undefined };
  // ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
  const responseBytes = sequence(
    bytes,
    explicit(bytes, outer[1]!, 0, 'responseBytes'),
    'ResponseBytes',
    2,
    2,
  );
  const responseType = value(
    bytes,
    responseBytes[0],
    TAG.OID,
    'responseType',
    readOid,
    'a DER OBJECT IDENTIFIER',
  );
  const response = typed(responseBytes[1], TAG.OCTET_STRING, 'response');
  if (responseStatus !== 'successful' || responseType !== BASIC_RESPONSE_OID) {
    return { der: bytes, responseStatus, responseType, basic: undefined };
  }
  const basic = readBasic(bytes, root(bytes, response.contentStart, response.end, 'BasicOCSPResponse'));
  return { der: bytes, responseStatus, responseType, basic };
}

/**
 * BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT STRING,
 * certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }. The signature's BIT STRING has no unused
 * bits (OpenSSL refuses one that has).
 */
function readBasic(bytes: Buffer, tlv: Tlv): BasicResponse {
  const [tbs, sigAlg, sig, certsField] = sequence(bytes, tlv, 'BasicOCSPResponse', 3, 4) as [
    Tlv,
    Tlv,
    Tlv,
    Tlv?,
  ];
  const data = readTbs(bytes, tbs);
  const signatureAlgorithm = algorithm(bytes, sigAlg, 'signatureAlgorithm');
  const signature = value(bytes, sig, TAG.BIT_STRING, 'signature', bitString, 'a DER BIT STRING');
  if (signature.unused !== 0)
    notDer('signature', sig.start, `has ${signature.unused} unused bits (a signature has none)`);
  const certs: Certificate[] = [];
  if (certsField) {
    const list = children(
      bytes,
      typed(explicit(bytes, certsField, 0, 'certs'), TAG.SEQUENCE, 'certs'),
      'certs',
    );
    for (const [i, cert] of list.entries()) {
      try {
        certs.push(certificateFromDer(encoding(bytes, cert)));
      } catch (err) {
        if (!(err instanceof CertificateParseError)) throw err;
        throw new ResponseParseError(
          `embedded certificate ${i + 1} (byte ${cert.start}): ${err.message}`,
          'not-der',
          {
            cause: err,
          },
        );
      }
    }
  }
  return { ...data, signatureAlgorithm, signature: signature.bits, certs };
}

/**
 * ResponseData ::= SEQUENCE { version [0] EXPLICIT INTEGER DEFAULT v1, responderID, producedAt,
 * responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL },
 * fields in that order and nothing else. An explicit version (Go's x/crypto/ocsp writes one) is
 * read past, as OpenSSL does, when it is a DER INTEGER.
 */
function readTbs(
  bytes: Buffer,
  tbs: Tlv,
): Pick<BasicResponse, 'tbsDer' | 'responderId' | 'producedAt' | 'responses' | 'extensions'> {
  const data = sequence(bytes, tbs, 'tbsResponseData', 3, 5);
  let i = 0;
  if (data[0]!.tag === contextTag(0, true)) {
    value(
      bytes,
      explicit(bytes, data[i++]!, 0, 'version'),
      TAG.INTEGER,
      'version',
      readInteger,
      'a minimal DER INTEGER',
    );
  }
  const responderId = readResponderId(bytes, data[i++]);
  const producedAt = time(bytes, data[i++], 'producedAt');
  const singles = children(bytes, typed(data[i++], TAG.SEQUENCE, 'responses'), 'responses');
  const responses = singles.map((single, n) => readSingle(bytes, single, `SingleResponse ${n + 1}`));
  let extensions: ExtensionInfo[] = [];
  if (data[i])
    extensions = readExtensions(
      bytes,
      explicit(bytes, data[i++]!, 1, 'responseExtensions'),
      'responseExtensions',
    );
  if (i !== data.length) structure(`tbsResponseData has an unexpected element at byte ${data[i]!.start}`);
  return { tbsDer: encoding(bytes, tbs), responderId, producedAt, responses, extensions };
}

/** ResponderID ::= CHOICE { byName [1] EXPLICIT Name, byKey [2] EXPLICIT OCTET STRING }. */
function readResponderId(bytes: Buffer, tlv: Tlv | undefined): ResponderId {
  if (!tlv) structure('responderID is missing');
  if (tlv.tag === contextTag(1, true)) {
    const name = explicit(bytes, tlv, 1, 'responderID byName');
    if (!isStrictDer(bytes, name)) notDer('responderID byName', name.start, 'is not a DER Name');
    const formatted = formatNameDer(bytes, name);
    if (formatted === undefined)
      structure(`responderID byName at byte ${name.start} is not a Name (or a value in it does not decode)`);
    return { byName: encoding(bytes, name), name: formatted };
  }
  if (tlv.tag !== contextTag(2, true))
    structure(`responderID at byte ${tlv.start} is neither byName [1] nor byKey [2]`);
  return {
    byKey: readOctets(
      bytes,
      typed(explicit(bytes, tlv, 2, 'responderID byKey'), TAG.OCTET_STRING, 'responderID byKey'),
    ),
  };
}

/**
 * SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT OPTIONAL,
 * singleExtensions [1] EXPLICIT OPTIONAL }; its fields are read in order, so the first bad one
 * is the one reported.
 */
function readSingle(bytes: Buffer, tlv: Tlv, what: string): SingleResponseInfo {
  const [certIdTlv, status, thisUpdateTlv, ...rest] = sequence(bytes, tlv, what, 3, 5) as [
    Tlv,
    Tlv,
    Tlv,
    ...Tlv[],
  ];
  const certId = readCertId(bytes, certIdTlv, what);
  const revocation = readCertStatus(bytes, status, what);
  const thisUpdate = time(bytes, thisUpdateTlv, `${what} thisUpdate`);
  const { nextUpdate, extensions } = readSingleOptionals(bytes, rest, what);
  return { certId, ...revocation, thisUpdate, nextUpdate, extensions };
}

/** CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber }. */
function readCertId(bytes: Buffer, tlv: Tlv, what: string): SingleResponseInfo['certId'] {
  const certId = sequence(bytes, tlv, `${what} certID`, 4, 4);
  const hash = algorithm(bytes, certId[0]!, `${what} certID hashAlgorithm`);
  const issuerNameHash = readOctets(bytes, typed(certId[1], TAG.OCTET_STRING, `${what} issuerNameHash`));
  const issuerKeyHash = readOctets(bytes, typed(certId[2], TAG.OCTET_STRING, `${what} issuerKeyHash`));
  const serial = value(
    bytes,
    certId[3],
    TAG.INTEGER,
    `${what} serialNumber`,
    readInteger,
    'a minimal DER INTEGER',
  );
  return { hashOid: hash.oid, hash: hashNameForOid(hash.oid), issuerNameHash, issuerKeyHash, serial };
}

/**
 * certStatus: good [0] IMPLICIT NULL | revoked [1] IMPLICIT RevokedInfo | unknown [2] IMPLICIT
 * NULL; RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT
 * CRLReason OPTIONAL }.
 */
function readCertStatus(
  bytes: Buffer,
  status: Tlv,
  what: string,
): Pick<SingleResponseInfo, 'certStatus' | 'revocationTime' | 'revocationReason'> {
  if (status.tag === contextTag(0, false) || status.tag === contextTag(2, false)) {
    if (status.end !== status.contentStart)
      notDer(`${what} certStatus`, status.start, 'is a NULL with content');
    const certStatus = status.tag === contextTag(0, false) ? 'good' : 'unknown';
    return { certStatus, revocationTime: undefined, revocationReason: undefined };
  }
  if (status.tag !== contextTag(1, true))
    structure(
      `${what} certStatus at byte ${status.start} is not good [0], revoked [1] or unknown [2] in their DER form (tag 0x${status.tag.toString(16)})`,
    );
  const info = children(bytes, status, `${what} revokedInfo`);
  if (info.length < 1 || info.length > 2)
    structure(`${what} revokedInfo at byte ${status.start} has ${info.length} fields, not 1 or 2`);
  const revocationTime = time(bytes, info[0], `${what} revocationTime`);
  let revocationReason: string | undefined;
  if (info[1]) {
    const code = value(
      bytes,
      explicit(bytes, info[1], 0, `${what} revocationReason`),
      TAG.ENUMERATED,
      `${what} revocationReason`,
      readEnumerated,
      'a small DER ENUMERATED',
    );
    revocationReason = REASON_NAMES[code] ?? `reason(${code})`;
  }
  return { certStatus: 'revoked', revocationTime, revocationReason };
}

/** The fields after thisUpdate: nextUpdate [0] EXPLICIT OPTIONAL, singleExtensions [1] EXPLICIT OPTIONAL. */
function readSingleOptionals(
  bytes: Buffer,
  rest: Tlv[],
  what: string,
): Pick<SingleResponseInfo, 'nextUpdate' | 'extensions'> {
  let nextUpdate: Date | undefined;
  let extensions: ExtensionInfo[] = [];
  let r = 0;
  if (rest[r]?.tag === contextTag(0, true))
    nextUpdate = time(bytes, explicit(bytes, rest[r++]!, 0, `${what} nextUpdate`), `${what} nextUpdate`);
  if (rest[r])
    extensions = readExtensions(
      bytes,
      explicit(bytes, rest[r++]!, 1, `${what} singleExtensions`),
      `${what} singleExtensions`,
    );
  if (r !== rest.length) structure(`${what} has an unexpected element at byte ${rest[r]!.start}`);
  return { nextUpdate, extensions };
}

/**
 * Extensions ::= SEQUENCE OF SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET
 * STRING }. DER leaves a DEFAULT value out, so `critical` present must be TRUE: an explicit FALSE is
 * not DER (and OpenSSL, re-encoding without it, finds the signature broken).
 */
function readExtensions(bytes: Buffer, tlv: Tlv, what: string): ExtensionInfo[] {
  const list = children(bytes, typed(tlv, TAG.SEQUENCE, what), what);
  return list.map((ext) => {
    const fields = sequence(bytes, ext, `${what} extension`, 2, 3);
    const oid = value(bytes, fields[0], TAG.OID, `${what} extnID`, readOid, 'a DER OBJECT IDENTIFIER');
    let critical = false;
    if (fields.length === 3) {
      critical = value(
        bytes,
        fields[1],
        TAG.BOOLEAN,
        `${what} ${oid} critical`,
        booleanValue,
        'a DER BOOLEAN (00 or FF)',
      );
      if (!critical)
        notDer(
          `${what} ${oid} critical`,
          fields[1]!.start,
          'is an explicit FALSE, the DEFAULT DER leaves out',
        );
    }
    const extnValue = readOctets(
      bytes,
      typed(fields[fields.length - 1], TAG.OCTET_STRING, `${what} ${oid} extnValue`),
    );
    return { oid, critical, value: extnValue };
  });
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }, params as their DER. */
function algorithm(bytes: Buffer, tlv: Tlv, what: string): AlgorithmId {
  const fields = sequence(bytes, tlv, what, 1, 2);
  const oid = value(bytes, fields[0], TAG.OID, what, readOid, 'a DER OBJECT IDENTIFIER');
  const params = fields[1];
  if (params && !isStrictDer(bytes, params)) notDer(`${what} parameters`, params.start, 'are not DER');
  return { oid, params: params && encoding(bytes, params) };
}
