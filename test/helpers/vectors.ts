/**
 * The OCSP reference vectors: real responses from public CAs and OpenSSL's test set, with
 * MANIFEST.json of expected verdicts. A copy lives in test/fixtures/ocsp-vectors (sources and
 * licences in its README.md) so a clone anywhere tests itself; OCSP_VECTORS_DIR points elsewhere
 * (e.g. the team's shared/ocsp-vectors, to test against a newer set).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const VECTORS_DIR = process.env.OCSP_VECTORS_DIR
  ? path.resolve(process.env.OCSP_VECTORS_DIR)
  : path.join(REPO_ROOT, 'test', 'fixtures', 'ocsp-vectors');

if (!existsSync(path.join(VECTORS_DIR, 'MANIFEST.json'))) {
  throw new Error(`OCSP vectors not found: no MANIFEST.json in ${VECTORS_DIR} (OCSP_VECTORS_DIR)`);
}
