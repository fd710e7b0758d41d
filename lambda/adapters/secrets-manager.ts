import {
  GetSecretValueCommand,
  ListSecretsCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { looksLikePem, pemBlocks, toPem } from '../core/der.js';
import {
  MAX_CERTIFICATE_BYTES,
  tooLargeError,
  type CertificateObject,
  type CertificateSource,
} from '../renew/ports.js';

/** JSON fields read as the certificate, then as the chain; anything else (keys!) is ignored. */
const CERT_FIELDS = ['certificate', 'cert', 'certificatePem', 'certificate_pem', 'tls.crt', 'fullchain'];
const CHAIN_FIELDS = [
  'chain',
  'certificateChain',
  'certificate_chain',
  'ca',
  'issuer',
  'issuing_ca',
  'ca.crt',
];

/** The secrets under a prefix: certificates to renew, and the keys of secrets scheduled for deletion. */
export interface SecretsListing {
  certificates: CertificateObject[];
  deleted: string[];
}

/**
 * Certificates kept in Secrets Manager, one secret each, under a name prefix. Keys are the secret
 * names minus the prefix (`tls/mail.example.com` → `mail.example.com`, staple
 * `mail.example.com.ocsp`). Accepted SecretString shapes: a PEM bundle, or JSON with a certificate
 * field (`certificate`, `cert`, `certificatePem`, `tls.crt`, `fullchain`) and optionally a chain
 * field (`chain`, `certificateChain`, `certificate_chain`, `ca`, `issuer`, `issuing_ca`);
 * SecretBinary may hold DER or PEM. Only CERTIFICATE blocks ever leave this adapter: private keys
 * in the secret are dropped here and never logged, stored or returned.
 */
export class SecretsManagerCertificateSource implements CertificateSource {
  readonly description: string;

  constructor(
    private readonly client: SecretsManagerClient,
    private readonly prefix: string,
  ) {
    this.description = `secretsmanager://${prefix}`;
  }

  async list(): Promise<CertificateObject[]> {
    return (await this.listing()).certificates;
  }

  /**
   * Every secret under the prefix: the certificates, and the keys of the secrets scheduled for
   * deletion (DeleteSecret keeps a secret 7 to 30 days, listed only with IncludePlannedDeletion):
   * deleted as an S3 certificate is removed, so the Lambda retires them.
   */
  async listing(): Promise<SecretsListing> {
    const certificates: CertificateObject[] = [];
    const deleted: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListSecretsCommand({
          Filters: [{ Key: 'name', Values: [this.prefix] }],
          IncludePlannedDeletion: true,
          NextToken: token,
          MaxResults: 100,
        }),
      );
      for (const secret of page.SecretList ?? []) {
        const name = secret.Name;
        // The name filter matches prefixes of words; keep exact name prefixes only.
        if (!name?.startsWith(this.prefix) || name === this.prefix) continue;
        const key = name.slice(this.prefix.length);
        if (secret.DeletedDate) deleted.push(key);
        else certificates.push({ key, tag: secret.LastChangedDate?.toISOString() });
      }
      token = page.NextToken;
    } while (token);
    return { certificates, deleted };
  }

  async read(key: string): Promise<Buffer> {
    const res = await this.client.send(new GetSecretValueCommand({ SecretId: this.prefix + key }));
    // Secrets Manager keeps values to 64 KiB; an endpoint that sends more is held to the cap of
    // every other certificate source before anything is parsed.
    const size =
      res.SecretString !== undefined ? Buffer.byteLength(res.SecretString) : (res.SecretBinary?.length ?? 0);
    if (size > MAX_CERTIFICATE_BYTES) throw tooLargeError(size, 'a certificate secret');
    if (res.SecretString !== undefined) return certificatesFromSecretString(res.SecretString);
    if (res.SecretBinary) {
      const bytes = Buffer.from(res.SecretBinary);
      return looksLikePem(bytes) ? certificatesFromSecretString(bytes.toString('latin1')) : bytes;
    }
    throw new Error('secret has neither SecretString nor SecretBinary');
  }
}

/** The certificates of a SecretString (PEM or JSON), re-encoded as a PEM bundle with nothing else. */
function certificatesFromSecretString(text: string): Buffer {
  let pem = text;
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw new Error('SecretString looks like JSON but does not parse');
    }
    const pick = (fields: string[]) =>
      fields.map((f) => doc[f]).find((v): v is string => typeof v === 'string' && v.length > 0);
    const cert = pick(CERT_FIELDS);
    if (!cert) {
      throw new Error(`SecretString JSON has no certificate field (one of ${CERT_FIELDS.join(', ')})`);
    }
    pem = `${cert}\n${pick(CHAIN_FIELDS) ?? ''}`;
  }
  const certs = pemBlocks(pem).filter((b) => b.label === 'CERTIFICATE');
  if (certs.length === 0) throw new Error('secret holds no CERTIFICATE block');
  return Buffer.from(certs.map((b) => toPem('CERTIFICATE', b.der)).join(''));
}
