import { parseCertificates, parseIssuerDownload, type Certificate } from '../core/certificate.js';
import { errorMessage } from '../core/errors.js';
import { verifySignatureCall } from '../core/signature.js';
import { certificateSignatureCall, recordIssuerSignature } from '../core/responder.js';

type IssuerSource = 'bundle' | 'sibling' | 'issuers-dir' | 'directory' | 'aia';

/** Where else to look for an issuer; each is optional. */
interface IssuerLookup {
  /** The `<name>.issuer.pem` beside the certificate, if there is one. */
  sibling?: () => Promise<Uint8Array | undefined>;
  /** Certificates from an issuers directory. */
  pool?: readonly Certificate[];
  /**
   * The CA certificates in the other certificate files of the certificate's own directory
   * (certbot's `chain.pem` and `fullchain.pem` beside `cert.pem`), read only when asked.
   */
  directory?: () => Promise<readonly Certificate[]>;
  /** Downloads a caIssuers URL (DER, PEM or PKCS#7 certs-only). The caller caches. */
  download?: (url: string) => Promise<Uint8Array>;
}

/** No candidate issuer's key verifies the certificate's signature. */
export class IssuerNotFoundError extends Error {
  override readonly name = 'IssuerNotFoundError';
  readonly code = 'ISSUER_NOT_FOUND';
}

/**
 * Finds the certificate that issued `leaf`, in order: the same bundle, a sibling
 * `<name>.issuer.pem`, an issuers directory (AKI→SKI, then subject name), the CA certificates in
 * the files beside it, the AIA caIssuers URLs.
 * A candidate counts only if its key verifies the leaf's signature.
 */
export async function resolveIssuer(
  leaf: Certificate,
  bundle: readonly Certificate[],
  lookup: IssuerLookup = {},
): Promise<{ issuer: Certificate; source: IssuerSource }> {
  const tried: string[] = [];
  const inBundle = await pickIssuer(leaf, bundle);
  if (inBundle) return { issuer: inBundle, source: 'bundle' };
  tried.push(bundle.length ? `bundle (${bundle.length} other certs)` : 'bundle (leaf only)');

  if (lookup.sibling) {
    const bytes = await lookup.sibling();
    if (bytes) {
      const found = await pickIssuer(leaf, parseCertificates(bytes));
      if (found) return { issuer: found, source: 'sibling' };
      tried.push('sibling .issuer.pem (does not match)');
    } else tried.push('sibling .issuer.pem (absent)');
  }

  if (lookup.pool) {
    const found = await pickIssuer(leaf, lookup.pool);
    if (found) return { issuer: found, source: 'issuers-dir' };
    tried.push(`issuers directory (${lookup.pool.length} certs)`);
  }

  if (lookup.directory) {
    const beside = await lookup.directory();
    const found = await pickIssuer(leaf, beside);
    if (found) return { issuer: found, source: 'directory' };
    tried.push(`CA certificates in the files beside it (${beside.length})`);
  }

  if (lookup.download) {
    for (const url of leaf.caIssuersUrls) {
      try {
        const found = await pickIssuer(leaf, parseIssuerDownload(await lookup.download(url)));
        if (found) return { issuer: found, source: 'aia' };
        tried.push(`caIssuers ${url} (does not match)`);
      } catch (err) {
        tried.push(`caIssuers ${url} (${errorMessage(err)})`);
      }
    }
    if (leaf.caIssuersUrls.length === 0) tried.push('caIssuers (no URL in the certificate)');
  }
  throw new IssuerNotFoundError(`no issuer certificate for "${leaf.issuer}": tried ${tried.join(', ')}`);
}

/**
 * The candidate that issued `leaf`: its subject must be the leaf's issuer name and its key must
 * verify the leaf's signature; candidates whose key identifier matches the leaf's AKI are tried
 * first (a re-keyed CA keeps its name).
 */
export async function pickIssuer(
  leaf: Certificate,
  candidates: readonly Certificate[],
): Promise<Certificate | undefined> {
  const named = candidates.filter((c) => c !== leaf && c.issued(leaf));
  const aki = leaf.authorityKeyId;
  const ordered = aki
    ? [
        ...named.filter((c) => c.subjectKeyId?.equals(aki)),
        ...named.filter((c) => !c.subjectKeyId?.equals(aki)),
      ]
    : named;
  for (const candidate of ordered) {
    // The leaf's signature under the candidate's key, verified in the thread pool when worth it.
    const call = certificateSignatureCall(leaf, candidate);
    const ok = !!call && (await verifySignatureCall(call));
    if (call) recordIssuerSignature(leaf, candidate, ok); // validateResponse checks it again
    if (ok) return candidate;
  }
  return undefined;
}
