import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FsCertificateSource, FsStapleStore } from '../adapters/filesystem.js';
import type { CertificateSource, NamingOptions, StapleStore } from '../renew/ports.js';
import { UsageError } from './flags.js';

// Where the CLI's locations lead: state and lock files, certificate sources, staple stores.

/** $XDG_STATE_HOME/ocsp-renewer (default ~/.local/state/ocsp-renewer): the CLI's state and locks. */
function stateDir(env: NodeJS.ProcessEnv): string {
  return path.join(env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state'), 'ocsp-renewer');
}

/** A short id of a staples location (a directory made absolute, or a URL). */
function locationId(staplesAt: string): string {
  const where = staplesAt.includes('://') ? staplesAt : path.resolve(staplesAt);
  return createHash('sha256').update(where).digest('hex').slice(0, 16);
}

/**
 * Where the CLI keeps its run state unless --state says otherwise: one file per staples location
 * under $XDG_STATE_HOME (default ~/.local/state), never among the staples a server reads.
 */
export function defaultStateFile(staplesAt: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDir(env), `state-${locationId(staplesAt)}.json`);
}

/** The lock of one staples location, beside the state files (never inside the staples directory). */
export function lockFileFor(staplesAt: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDir(env), `lock-${locationId(staplesAt)}`);
}

/** A staple's full location: a path under a staples directory, or a URL under a prefix. */
export function locationOf(staplesAt: string, key: string): string {
  return staplesAt.includes('://') ? `${staplesAt.replace(/\/*$/, '')}/${key}` : path.resolve(staplesAt, key);
}

/** Whether `location` is a URL (`s3://…`, `https://…`), not a path. */
export function isUrl(location: string): boolean {
  return /^[a-z0-9]+:\/\//i.test(location);
}

export async function isLocalFile(location: string): Promise<boolean> {
  if (isUrl(location)) return false;
  return (await stat(location).catch(() => undefined))?.isFile() === true;
}

/**
 * `s3://bucket/dir/www.pem` naming one existing object (no trailing slash): its bucket, its
 * directory's prefix (`dir/`), its name and ETag, and the directory as a URL (where its staple goes
 * by default, as for --certs FILE). Undefined for anything else, a prefix included.
 */
export async function s3CertificateObject(
  location: string,
): Promise<{ bucket: string; prefix: string; name: string; tag: string; directory: string } | undefined> {
  if (!location.startsWith('s3://') || location.endsWith('/')) return undefined;
  const { headObjectTag, makeS3Client, parseS3Object } = await import('../adapters/s3.js');
  const object = parseS3Object(location);
  if (!object) return undefined;
  const s3 = makeS3Client();
  try {
    const tag = await headObjectTag(s3, object.bucket, object.key);
    if (tag === undefined) return undefined;
    const cut = object.key.lastIndexOf('/') + 1;
    const prefix = object.key.slice(0, cut);
    return {
      bucket: object.bucket,
      prefix,
      name: object.key.slice(cut),
      tag,
      directory: `s3://${object.bucket}/${prefix}`,
    };
  } finally {
    s3.destroy();
  }
}

/**
 * `--certs`: a directory, a single file, `s3://bucket/prefix`, one `s3://bucket/key` object or
 * `secretsmanager://name-prefix`.
 */
export async function certificateSourceFor(
  location: string,
  naming: NamingOptions,
): Promise<CertificateSource> {
  // The AWS SDK is loaded here, for an AWS location only: a run over a directory never pays for it.
  if (location.startsWith('s3://')) {
    const { makeS3Client, parseS3Url, S3CertificateSource, S3KeyedCertificateSource } =
      await import('../adapters/s3.js');
    const object = await s3CertificateObject(location);
    if (object) {
      return new S3KeyedCertificateSource(
        makeS3Client(),
        object.bucket,
        object.prefix,
        [{ key: object.name, tag: object.tag }],
        naming,
      );
    }
    const { bucket, prefix } = parseS3Url(location);
    return new S3CertificateSource(makeS3Client(), bucket, prefix, naming);
  }
  if (location.startsWith('secretsmanager://')) {
    const [{ SecretsManagerClient }, { SecretsManagerCertificateSource }] = await Promise.all([
      import('@aws-sdk/client-secrets-manager'),
      import('../adapters/secrets-manager.js'),
    ]);
    return new SecretsManagerCertificateSource(
      new SecretsManagerClient({}),
      location.slice('secretsmanager://'.length),
    );
  }
  if (isUrl(location)) throw new UsageError(`unsupported location ${location}`);
  if (await isLocalFile(location)) {
    return new FsCertificateSource(path.dirname(location), naming, path.basename(location));
  }
  return new FsCertificateSource(location, naming);
}

/** `--staples`: a directory or `s3://bucket/prefix` (the AWS SDK loaded for that one only). */
export async function stapleStoreFor(location: string): Promise<StapleStore> {
  if (location.startsWith('s3://')) {
    const { makeS3Client, parseS3Url, S3StapleStore } = await import('../adapters/s3.js');
    const { bucket, prefix } = parseS3Url(location);
    return new S3StapleStore(makeS3Client(), bucket, prefix);
  }
  if (isUrl(location)) throw new UsageError(`staples cannot go to ${location}`);
  return new FsStapleStore(location);
}
