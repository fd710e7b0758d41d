import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import {
  DEFAULT_NAMING,
  isCertificateKey,
  MAX_CERTIFICATE_BYTES,
  tooLargeError,
  issuerSiblingKeyFor,
  type CertificateObject,
  type CertificateSource,
  type ConditionalPut,
  type NamingOptions,
  type StapleMeta,
  type StapleStore,
  type StoredStaple,
} from '../renew/ports.js';
import { asBuffer } from '../core/der.js';
import type { StateBlob } from './state-store.js';

/**
 * An S3 client that honours the standard AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (path-style when
 * an endpoint is set, so a local S3 server works) and asks for checksums only when required.
 */
export function makeS3Client(env: NodeJS.ProcessEnv = process.env, extra: S3ClientConfig = {}): S3Client {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  return new S3Client({
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
}

/** `s3://bucket/prefix/` → { bucket, prefix } (prefix normalised to end in `/` unless empty). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!match) throw new Error(`not an s3:// URL: ${url}`);
  return { bucket: match[1]!, prefix: normalisePrefix(match[2] ?? '') };
}

/** `s3://bucket/key` (one object, a key required) as its parts; undefined for anything else. */
export function parseS3Object(url: string): { bucket: string; key: string } | undefined {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  return match ? { bucket: match[1]!, key: match[2]! } : undefined;
}

export function normalisePrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** Every object under a prefix as key (relative to the prefix) → ETag; ⌈N/1000⌉ list calls. */
export async function listObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const obj of page.Contents ?? []) {
      if (obj.Key && !obj.Key.endsWith('/')) out.set(obj.Key.slice(prefix.length), obj.ETag ?? '');
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/**
 * The object's bytes, or undefined when there is no such key. With `maxBytes`, an object larger
 * than that is refused from its Content-Length before its body is read (the connection is
 * dropped), and a body sent without a length stops being read past `maxBytes`.
 */
export async function getObject(
  s3: S3Client,
  bucket: string,
  key: string,
  maxBytes?: number,
): Promise<{ body: Buffer; tag: string | undefined } | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (maxBytes !== undefined && (res.ContentLength === undefined || res.ContentLength > maxBytes)) {
      return { body: await readCapped(res.Body, res.ContentLength, maxBytes), tag: res.ETag };
    }
    // The SDK's array is a fresh one of exactly the body's size: used as it is, not copied again
    // into Node's Buffer pool (one copy less per object, and no pool slab kept by what is kept).
    const bytes = await res.Body?.transformToByteArray();
    const body = bytes ? asBuffer(bytes) : Buffer.alloc(0);
    return { body, tag: res.ETag };
  } catch (err) {
    if (err instanceof NoSuchKey || (err instanceof S3ServiceException && err.name === 'NoSuchKey')) {
      return undefined;
    }
    throw err;
  }
}

/**
 * The object's ETag, or undefined when there is no such key (or no such bucket: HEAD answers
 * both with a bare 404, and the listing that follows names the missing bucket).
 */
export async function headObjectTag(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag ?? '';
  } catch (err) {
    if (
      err instanceof S3ServiceException &&
      (err.$metadata.httpStatusCode === 404 || err.name === 'NotFound')
    ) {
      return undefined;
    }
    throw err;
  }
}

/** A body over the cap (its length said so) or of unknown length, read up to `maxBytes` at most. */
async function readCapped(body: unknown, length: number | undefined, maxBytes: number): Promise<Buffer> {
  const stream = body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
  if (length !== undefined) {
    stream?.destroy?.();
    throw tooLargeError(length, 'a certificate object', maxBytes);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream ?? []) {
    total += chunk.length;
    if (total > maxBytes) {
      stream?.destroy?.();
      throw tooLargeError(undefined, 'a certificate object', maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** The run state as an S3 object (the Lambda's `state/state.json`; a status --state s3://…). */
export function s3StateBlob(s3: S3Client, bucket: string, key: string): StateBlob {
  return {
    description: `s3://${bucket}/${key}`,
    read: async () => (await getObject(s3, bucket, key))?.body,
    write: async (body) => {
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }),
      );
    },
  };
}

/** Certificates under an S3 prefix; keys are relative to the prefix, tags are ETags. */
export class S3CertificateSource implements CertificateSource {
  readonly description: string;
  private listed = new Map<string, string>();

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly naming: NamingOptions = DEFAULT_NAMING,
  ) {
    this.prefix = normalisePrefix(prefix);
    this.description = `s3://${bucket}/${this.prefix}`;
  }

  async list(): Promise<CertificateObject[]> {
    this.listed = await listObjects(this.s3, this.bucket, this.prefix);
    return [...this.listed]
      .filter(([key]) => isCertificateKey(key, this.naming))
      .map(([key, tag]) => ({ key, tag }));
  }

  async read(key: string): Promise<Buffer> {
    const obj = await getObject(this.s3, this.bucket, this.prefix + key, MAX_CERTIFICATE_BYTES);
    if (!obj) throw new Error(`no object s3://${this.bucket}/${this.prefix}${key}`);
    return obj.body;
  }

  /** Only fetched when the listing showed it, so a missing sibling costs no request. */
  async readIssuerSibling(key: string): Promise<Buffer | undefined> {
    const sibling = issuerSiblingKeyFor(key, this.naming);
    if (!this.listed.has(sibling)) return undefined;
    return (await getObject(this.s3, this.bucket, this.prefix + sibling, MAX_CERTIFICATE_BYTES))?.body;
  }
}

/**
 * Given certificates under an S3 prefix, without listing it: a batch of keys from a queue or a
 * map run costs what the batch costs, not what the whole prefix costs. `list()` returns exactly
 * the objects given (tags as the event or listing reported them); an issuer sibling is fetched
 * and a 404 means there is none.
 */
export class S3KeyedCertificateSource implements CertificateSource {
  readonly description: string;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly objects: readonly CertificateObject[],
    private readonly naming: NamingOptions = DEFAULT_NAMING,
  ) {
    this.prefix = normalisePrefix(prefix);
    this.description = `s3://${bucket}/${this.prefix}`;
  }

  list(): Promise<CertificateObject[]> {
    return Promise.resolve(this.objects.filter((o) => isCertificateKey(o.key, this.naming)));
  }

  async read(key: string): Promise<Buffer> {
    const obj = await getObject(this.s3, this.bucket, this.prefix + key, MAX_CERTIFICATE_BYTES);
    if (!obj) throw new Error(`no object s3://${this.bucket}/${this.prefix}${key}`);
    return obj.body;
  }

  async readIssuerSibling(key: string): Promise<Buffer | undefined> {
    const sibling = this.prefix + issuerSiblingKeyFor(key, this.naming);
    return (await getObject(this.s3, this.bucket, sibling, MAX_CERTIFICATE_BYTES))?.body;
  }
}

/** Staples under an S3 prefix, written with their content type and validity as metadata. */
export class S3StapleStore implements StapleStore {
  readonly description: string;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {
    this.prefix = normalisePrefix(prefix);
    this.description = `s3://${bucket}/${this.prefix}`;
  }

  /** Key → ETag of every staple: lets a quiet run see deleted or replaced staples without a GET. */
  list(): Promise<Map<string, string>> {
    return listObjects(this.s3, this.bucket, this.prefix);
  }

  async get(key: string): Promise<StoredStaple | undefined> {
    const obj = await getObject(this.s3, this.bucket, this.prefix + key);
    return obj && { der: obj.body, tag: obj.tag };
  }

  async put(key: string, der: Buffer, meta: StapleMeta): Promise<string | undefined> {
    const res = await this.s3.send(new PutObjectCommand(this.putInput(key, der, meta)));
    return res.ETag;
  }

  /** Needs s3:DeleteObject on the staples prefix (the CDK stack grants it there only). */
  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
  }

  async putMarker(key: string, text: string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.prefix + key,
        Body: Buffer.from(text, 'utf8'),
        ContentType: 'text/plain; charset=utf-8',
      }),
    );
  }

  /**
   * S3's conditional write: `If-Match: <ETag read>`, or `If-None-Match: *` when there was no
   * staple. S3 answers 412 PreconditionFailed when the staple changed, 404 NoSuchKey when it was
   * deleted meanwhile (If-Match), and 409 ConditionalRequestConflict when two conditional writes
   * race; all three mean "re-read and decide again".
   */
  async putIfUnchanged(
    key: string,
    der: Buffer,
    meta: StapleMeta,
    expectedTag: string | null,
  ): Promise<ConditionalPut> {
    try {
      const res = await this.s3.send(
        new PutObjectCommand({
          ...this.putInput(key, der, meta),
          ...(expectedTag === null ? { IfNoneMatch: '*' } : { IfMatch: expectedTag }),
        }),
      );
      return { written: true, tag: res.ETag };
    } catch (err) {
      if (isConditionalConflict(err)) return { written: false };
      throw err;
    }
  }

  private putInput(key: string, der: Buffer, meta: StapleMeta) {
    return {
      Bucket: this.bucket,
      Key: this.prefix + key,
      Body: der,
      ContentType: 'application/ocsp-response',
      Metadata: {
        'this-update': meta.thisUpdate.toISOString(),
        ...(meta.nextUpdate ? { 'next-update': meta.nextUpdate.toISOString() } : {}),
        ...(meta.producedAt ? { 'produced-at': meta.producedAt.toISOString() } : {}),
        'cert-status': meta.certStatus,
        ...(meta.certTag ? { 'source-cert-etag': meta.certTag.replace(/"/g, '') } : {}),
      },
    };
  }
}

function isConditionalConflict(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  return (
    err.$metadata?.httpStatusCode === 412 ||
    ['PreconditionFailed', 'ConditionalRequestConflict', 'NoSuchKey'].includes(err.name)
  );
}
