import { stat } from 'node:fs/promises';
import path from 'node:path';
import { readBoundedFile } from '../adapters/bounded-file.js';
import { filesUnder, readIssuerSiblingFile } from '../adapters/filesystem.js';
import { parseCertificates, type Certificate } from '../core/certificate.js';
import { errorMessage } from '../core/errors.js';

// The certificate, issuer and staple files the commands read themselves.

/** Every certificate in an issuers directory (any depth; .pem .crt .cer .der, bundles too). */
export async function loadIssuerDir(dir: string): Promise<Certificate[]> {
  if (!(await stat(dir).catch(() => undefined))?.isDirectory())
    throw new Error(`issuers directory: ${dir} is not a directory`);
  // filesUnder: regular files only, never into a symlinked directory (links to `.` would loop).
  const files = (await filesUnder(dir)).filter((f) => /\.(pem|crt|cer|der)$/i.test(f)).sort();
  const certs: Certificate[] = [];
  for (const file of files) {
    const full = path.join(dir, file);
    try {
      certs.push(...parseCertificates(await readCapped(full)));
    } catch (err) {
      throw new Error(`issuers directory: ${full}: ${errorMessage(err)}`);
    }
  }
  return certs;
}

/** Reads a certificate or staple file: a regular file of at most 1 MiB (readBoundedFile). */
export function readCapped(file: string): Promise<Buffer> {
  return Promise.resolve().then(() => readBoundedFile(file, 'a certificate or staple').data);
}

/** Reads `<name>.issuer.pem` beside a certificate file, if there is one. */
export function siblingReader(certFile: string): () => Promise<Buffer | undefined> {
  return () => readIssuerSiblingFile(certFile);
}

export async function loadCerts(file: string, what: string): Promise<Certificate[]> {
  try {
    return parseCertificates(await readCapped(file));
  } catch (err) {
    throw new Error(`parse ${what} ${file}: ${errorMessage(err)}`);
  }
}
