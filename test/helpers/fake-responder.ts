/**
 * A loopback HTTP OCSP responder for what `openssl ocsp` cannot produce (HTTP errors, HTML pages,
 * slow or oversized bodies, redirects, Cache-Control), plus `buildOcspResponse`, which signs DER
 * OCSP responses with pkijs for the cases `openssl ocsp` will not sign: wrong CertID, a foreign
 * signer, no nextUpdate, a future thisUpdate, a chosen nonce, tryLater and so on.
 *
 * Unlike `openssl ocsp`, this server copes with clients that connect and abort, so timeout and
 * abort tests belong here.
 */
import { webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { Certificate, parseCertificates } from '../../lambda/core/certificate.js';
import { asBuffer, HASH_OIDS, pemBlocks, toArrayBuffer } from '../../lambda/core/der.js';
import { BASIC_RESPONSE_OID } from '../../lambda/core/ocsp-response.js';
import { NONCE_OID, type CertId } from '../../lambda/core/ocsp-request.js';

// --- the server -----------------------------------------------------------------------------------

export interface FakeRequest {
  method: string;
  /** The request target, e.g. `/MEMwQT...%3D` or `/second`. */
  path: string;
  body: Buffer;
  /** The OCSPRequest: the last path segment of a GET (url-decoded base64), or a POST body. */
  requestDer: Buffer | undefined;
}

export interface FakeReply {
  status?: number;
  headers?: Record<string, string>;
  body: Buffer | string;
}

/**
 * Answers one request. Return a reply, or take over `res` (slow or oversized bodies, stalls) and
 * return undefined.
 */
export type FakeHandler = (
  req: FakeRequest,
  res: http.ServerResponse,
) => FakeReply | undefined | Promise<FakeReply | undefined>;

export interface RecordedRequest {
  method: string;
  url: string;
  contentType: string | undefined;
}

export interface FakeResponder {
  /** `http://127.0.0.1:<port>/` */
  url: string;
  port: number;
  /** Every request received, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Replaces the handler (one server, many cases). */
  setHandler(handler: FakeHandler): void;
  /** Empties `requests`. */
  clearRequests(): void;
  /** Closes the server and destroys open sockets, stalled ones included. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a node:http server on 127.0.0.1 (a free port) that answers with `handler`. */
export async function startFakeResponder(handler: FakeHandler): Promise<FakeResponder> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'] });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? '/';
      const fake: FakeRequest = {
        method: req.method ?? '',
        path,
        body,
        requestDer: req.method === 'POST' ? body : fromGetPath(path),
      };
      Promise.resolve()
        .then(() => current(fake, res))
        .then(
          (reply) => {
            if (!reply || res.headersSent || res.destroyed) return;
            res.writeHead(reply.status ?? 200, {
              'content-type': 'application/ocsp-response',
              ...reply.headers,
            });
            res.end(reply.body);
          },
          (err: unknown) => {
            if (res.headersSent || res.destroyed) return;
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(`fake responder handler failed: ${String(err)}`);
          },
        );
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('fake responder has no TCP address');
  const port = address.port;

  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    requests,
    setHandler(next) {
      current = next;
    },
    clearRequests() {
      requests.length = 0;
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return stopped;
    },
  };
}

/** The base64 request in a GET path's last segment, or undefined when there is none. */
function fromGetPath(path: string): Buffer | undefined {
  const last = path.split('?')[0]!.split('/').pop() ?? '';
  if (!last) return undefined;
  let der: Buffer;
  try {
    der = Buffer.from(decodeURIComponent(last), 'base64');
  } catch {
    return undefined;
  }
  return der.length > 0 && der[0] === 0x30 ? der : undefined;
}

// --- reading requests -----------------------------------------------------------------------------

export interface RequestInfo {
  certId: CertId;
  /** The nonce's bytes (inside the RFC 8954 OCTET STRING), when the request carries one. */
  nonce: Buffer | undefined;
}

/** The first CertID and the nonce of a DER OCSPRequest. */
export function readOcspRequest(der: Buffer): RequestInfo {
  const asn = asn1js.fromBER(toArrayBuffer(der));
  if (asn.offset === -1) throw new Error('OCSPRequest is not DER');
  const request = new pkijs.OCSPRequest({ schema: asn.result });
  const first = request.tbsRequest.requestList[0];
  if (!first) throw new Error('OCSPRequest has no Request');
  const id = first.reqCert;
  const hash = (Object.keys(HASH_OIDS) as (keyof typeof HASH_OIDS)[]).find(
    (name) => HASH_OIDS[name] === id.hashAlgorithm.algorithmId,
  );
  if (!hash) throw new Error(`unexpected CertID hash ${id.hashAlgorithm.algorithmId}`);
  const ext = request.tbsRequest.requestExtensions?.find((e) => e.extnID === NONCE_OID);
  let nonce: Buffer | undefined;
  if (ext) {
    const inner = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView);
    nonce =
      inner.offset !== -1 && inner.result instanceof asn1js.OctetString
        ? asBuffer(inner.result.valueBlock.valueHexView)
        : asBuffer(ext.extnValue.valueBlock.valueHexView);
  }
  return {
    certId: {
      hash,
      issuerNameHash: asBuffer(id.issuerNameHash.valueBlock.valueHexView),
      issuerKeyHash: asBuffer(id.issuerKeyHash.valueBlock.valueHexView),
      serial: asBuffer(id.serialNumber.valueBlock.valueHexView),
    },
    nonce,
  };
}

// --- building responses ---------------------------------------------------------------------------

export interface ResponseSigner {
  cert: Certificate;
  key: webcrypto.CryptoKey;
}

/** Reads a PEM certificate and its PEM PKCS#8 RSA key (as makeTestPki writes them) into a signer. */
export async function loadSigner(certPath: string, keyPath: string): Promise<ResponseSigner> {
  const [certPem, keyPem] = await Promise.all([readFile(certPath), readFile(keyPath, 'latin1')]);
  const cert = parseCertificates(certPem)[0]!;
  const block = pemBlocks(keyPem).find((b) => b.label === 'PRIVATE KEY');
  if (!block) throw new Error(`${keyPath}: no PKCS#8 PRIVATE KEY block`);
  return { cert, key: await importRsaKey(block.der) };
}

export function importRsaKey(pkcs8: Buffer): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey(
    'pkcs8',
    toArrayBuffer(pkcs8),
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    false,
    ['sign'],
  );
}

/** A fresh RSA key that no certificate in the test PKI belongs to. */
export async function unrelatedRsaKey(): Promise<webcrypto.CryptoKey> {
  const pair = await webcrypto.subtle.generateKey(
    {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    false,
    ['sign', 'verify'],
  );
  return pair.privateKey;
}

const RESPONSE_STATUS_CODES = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;

export interface BuildOcspResponseOptions {
  /** Anything but `successful` gives a bare OCSPResponse without responseBytes. */
  responseStatus?: keyof typeof RESPONSE_STATUS_CODES;
  /** The CertID answered for: taken from `request` (DER), or given (see certIdFor). */
  request?: Buffer;
  certId?: CertId;
  /** Replaces the CertID's serial (INTEGER content bytes): a "wrong CertID" response. */
  serial?: Buffer;
  certStatus?: 'good' | 'revoked' | 'unknown';
  /** For revoked; default thisUpdate minus one day. */
  revocationTime?: Date;
  /** CRLReason code for revoked (1 = keyCompromise); omitted when undefined. */
  revocationReason?: number;
  thisUpdate: Date;
  /** Omit for a response without nextUpdate. */
  nextUpdate?: Date;
  /** Default thisUpdate. */
  producedAt?: Date;
  /** Signs the response; its certificate is named by the responderID. */
  signer: ResponseSigner;
  /** Certificates embedded in `certs`; default the signer's certificate. */
  certs?: Certificate[];
  responderId?: 'byName' | 'byKey';
  /** byName: this Name (DER) instead of the signer's subject as encoded in its certificate. */
  responderName?: Buffer;
  /** Echoed as an RFC 8954 nonce extension (OCTET STRING in extnValue). */
  nonce?: Buffer;
  /** Further responseExtensions. */
  extensions?: { oid: string; critical?: boolean; value: Buffer }[];
  /** SingleResponses after the first, each with its own CertID and status (times: the first's). */
  moreResponses?: Pick<
    BuildOcspResponseOptions,
    'certId' | 'certStatus' | 'revocationTime' | 'revocationReason'
  >[];
}

const engine = new pkijs.CryptoEngine({
  name: 'node',
  crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'],
});

/** A DER OCSPResponse built and signed with pkijs (SHA-256 with RSA). */
export async function buildOcspResponse(opts: BuildOcspResponseOptions): Promise<Buffer> {
  const status = opts.responseStatus ?? 'successful';
  if (status !== 'successful') {
    const bare = new pkijs.OCSPResponse({
      responseStatus: new asn1js.Enumerated({ value: RESPONSE_STATUS_CODES[status] }),
    });
    return asBuffer(bare.toSchema().toBER());
  }

  const id = opts.certId ?? (opts.request ? readOcspRequest(opts.request).certId : undefined);
  if (!id) throw new Error('buildOcspResponse: give request or certId');
  const singleFor = (
    certId: CertId,
    status: Pick<BuildOcspResponseOptions, 'certStatus' | 'revocationTime' | 'revocationReason'>,
    serial?: Buffer,
  ) =>
    new pkijs.SingleResponse({
      certID: new pkijs.CertID({
        hashAlgorithm: new pkijs.AlgorithmIdentifier({
          algorithmId: HASH_OIDS[certId.hash],
          algorithmParams: new asn1js.Null(),
        }),
        issuerNameHash: new asn1js.OctetString({ valueHex: toArrayBuffer(certId.issuerNameHash) }),
        issuerKeyHash: new asn1js.OctetString({ valueHex: toArrayBuffer(certId.issuerKeyHash) }),
        serialNumber: new asn1js.Integer({ valueHex: toArrayBuffer(serial ?? certId.serial) }),
      }),
      certStatus: certStatusBlock({ ...status, thisUpdate: opts.thisUpdate }),
      thisUpdate: wholeSeconds(opts.thisUpdate),
      ...(opts.nextUpdate ? { nextUpdate: wholeSeconds(opts.nextUpdate) } : {}),
    });
  const singles = [
    singleFor(id, opts, opts.serial),
    ...(opts.moreResponses ?? []).map((more) => singleFor(more.certId!, more)),
  ];

  const extensions: pkijs.Extension[] = [];
  if (opts.nonce) {
    extensions.push(
      new pkijs.Extension({
        extnID: NONCE_OID,
        critical: false,
        extnValue: new asn1js.OctetString({ valueHex: toArrayBuffer(opts.nonce) }).toBER(),
      }),
    );
  }
  for (const ext of opts.extensions ?? []) {
    extensions.push(
      new pkijs.Extension({
        extnID: ext.oid,
        critical: ext.critical ?? false,
        extnValue: toArrayBuffer(ext.value),
      }),
    );
  }

  const signerCert = opts.signer.cert;
  const responderID =
    (opts.responderId ?? 'byName') === 'byName'
      ? new pkijs.RelativeDistinguishedNames({
          schema: asn1js.fromBER(toArrayBuffer(opts.responderName ?? signerCert.subjectDer)).result,
        })
      : new asn1js.OctetString({ valueHex: toArrayBuffer(signerCert.keyHash('sha1')) });

  const basic = new pkijs.BasicOCSPResponse({
    tbsResponseData: new pkijs.ResponseData({
      responderID,
      producedAt: wholeSeconds(opts.producedAt ?? opts.thisUpdate),
      responses: singles,
      ...(extensions.length ? { responseExtensions: extensions } : {}),
    }),
    certs: (opts.certs ?? [signerCert]).map(
      (c) => new pkijs.Certificate({ schema: asn1js.fromBER(toArrayBuffer(c.der)).result }),
    ),
  });
  await basic.sign(opts.signer.key, 'SHA-256', engine);

  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: BASIC_RESPONSE_OID,
      response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER() }),
    }),
  });
  return asBuffer(response.toSchema().toBER());
}

/** CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL } */
function certStatusBlock(
  opts: Pick<BuildOcspResponseOptions, 'certStatus' | 'revocationTime' | 'revocationReason' | 'thisUpdate'>,
): asn1js.BaseBlock {
  const status = opts.certStatus ?? 'good';
  if (status !== 'revoked') {
    return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: status === 'good' ? 0 : 2 } });
  }
  const revocationTime = opts.revocationTime ?? new Date(opts.thisUpdate.getTime() - 86_400_000);
  const info: asn1js.BaseBlock[] = [new asn1js.GeneralizedTime({ valueDate: wholeSeconds(revocationTime) })];
  if (opts.revocationReason !== undefined) {
    info.push(
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [new asn1js.Enumerated({ value: opts.revocationReason })],
      }),
    );
  }
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value: info });
}

/** GeneralizedTime in OCSP carries no fractional seconds (RFC 5280 §4.1.2.5.2). */
function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}
