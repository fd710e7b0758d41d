import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { algorithmId, Certificate, formatName, type AlgorithmId } from './certificate.js';
import { asBuffer, hashNameForOid, toArrayBuffer, type HashName } from './der.js';

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

export class ResponseParseError extends Error {}

/** Parses a DER OCSPResponse. Throws ResponseParseError when it is not one (an HTML page, say). */
export function parseOcspResponse(der: Uint8Array): ParsedResponse {
  const bytes = Buffer.from(der);
  const asn = asn1js.fromBER(toArrayBuffer(bytes));
  if (asn.offset === -1) throw new ResponseParseError(`not DER (${asn.result.error || 'bad encoding'})`);
  if (asn.offset !== bytes.length) throw new ResponseParseError('trailing bytes after the OCSPResponse');
  let outer: pkijs.OCSPResponse;
  try {
    outer = new pkijs.OCSPResponse({ schema: asn.result });
  } catch (err) {
    throw new ResponseParseError(`not an OCSPResponse: ${(err as Error).message}`);
  }
  const code = outer.responseStatus.valueBlock.valueDec;
  const responseStatus = STATUS_NAMES[code] ?? (`UNKNOWN(${code})` as const);
  const responseType = outer.responseBytes?.responseType;
  if (responseStatus !== 'successful' || responseType !== BASIC_RESPONSE_OID || !outer.responseBytes) {
    return { der: bytes, responseStatus, responseType, basic: undefined };
  }
  return { der: bytes, responseStatus, responseType, basic: parseBasic(outer.responseBytes.response) };
}

function parseBasic(octets: asn1js.OctetString): BasicResponse {
  const asn = asn1js.fromBER(octets.valueBlock.valueHexView);
  if (asn.offset === -1) throw new ResponseParseError('BasicOCSPResponse is not DER');
  let basic: pkijs.BasicOCSPResponse;
  try {
    basic = new pkijs.BasicOCSPResponse({ schema: asn.result });
  } catch (err) {
    throw new ResponseParseError(`not a BasicOCSPResponse: ${(err as Error).message}`);
  }
  const data = basic.tbsResponseData;
  const rid = data.responderID as unknown;
  const responderId: ResponderId =
    rid instanceof pkijs.RelativeDistinguishedNames
      ? { byName: asBuffer(rid.toSchema().toBER()), name: formatName(rid) }
      : { byKey: asBuffer((rid as asn1js.OctetString).valueBlock.valueHexView) };
  const certs: Certificate[] = [];
  for (const [index, cert] of (basic.certs ?? []).entries()) {
    try {
      certs.push(new Certificate(asBuffer(cert.toSchema().toBER())));
    } catch (err) {
      throw new ResponseParseError(`embedded certificate ${index} does not parse: ${(err as Error).message}`);
    }
  }
  return {
    tbsDer: asBuffer(data.tbsView),
    responderId,
    producedAt: data.producedAt,
    responses: data.responses.map(parseSingle),
    extensions: (data.responseExtensions ?? []).map(extensionInfo),
    signatureAlgorithm: algorithmId(basic.signatureAlgorithm),
    signature: asBuffer(basic.signature.valueBlock.valueHexView),
    certs,
  };
}

function parseSingle(single: pkijs.SingleResponse): SingleResponseInfo {
  const id = single.certID;
  const status = single.certStatus as asn1js.BaseBlock;
  let certStatus: CertStatus;
  let revocationTime: Date | undefined;
  let revocationReason: string | undefined;
  switch (status.idBlock.tagNumber) {
    case 0:
      certStatus = 'good';
      break;
    case 1: {
      certStatus = 'revoked';
      ({ revocationTime, revocationReason } = revokedInfo(status));
      break;
    }
    case 2:
      certStatus = 'unknown';
      break;
    default:
      throw new ResponseParseError(`certStatus has an unknown tag [${status.idBlock.tagNumber}]`);
  }
  return {
    certId: {
      hashOid: id.hashAlgorithm.algorithmId,
      hash: hashNameForOid(id.hashAlgorithm.algorithmId),
      issuerNameHash: asBuffer(id.issuerNameHash.valueBlock.valueHexView),
      issuerKeyHash: asBuffer(id.issuerKeyHash.valueBlock.valueHexView),
      serial: asBuffer(id.serialNumber.valueBlock.valueHexView),
    },
    certStatus,
    revocationTime,
    revocationReason,
    thisUpdate: single.thisUpdate,
    nextUpdate: single.nextUpdate,
    extensions: (single.singleExtensions ?? []).map(extensionInfo),
  };
}

/** RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL } */
function revokedInfo(block: asn1js.BaseBlock): {
  revocationTime: Date;
  revocationReason: string | undefined;
} {
  // [1] IMPLICIT RevokedInfo arrives as a constructed context block whose content asn1js has decoded.
  const [time, reasonBlock] = (block as asn1js.Constructed).valueBlock?.value ?? [];
  if (!(time instanceof asn1js.GeneralizedTime)) {
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
  return { revocationTime: time.toDate(), revocationReason };
}

function extensionInfo(ext: pkijs.Extension): ExtensionInfo {
  return { oid: ext.extnID, critical: ext.critical, value: asBuffer(ext.extnValue.valueBlock.valueHexView) };
}
