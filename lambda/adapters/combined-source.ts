import type { CertificateObject, CertificateSource } from '../renew/ports.js';

/** Several certificate sources as one; a key seen twice is taken from the first source only. */
export class CombinedCertificateSource implements CertificateSource {
  readonly description: string;
  private readonly owner = new Map<string, CertificateSource>();

  constructor(private readonly sources: CertificateSource[]) {
    this.description = sources.map((s) => s.description).join(' + ');
  }

  async list(): Promise<CertificateObject[]> {
    this.owner.clear();
    const out: CertificateObject[] = [];
    for (const source of this.sources) {
      for (const object of await source.list()) {
        if (this.owner.has(object.key)) continue;
        this.owner.set(object.key, source);
        out.push(object);
      }
    }
    return out;
  }

  read(key: string): Promise<Buffer> {
    return this.sourceOf(key).read(key);
  }

  async readIssuerSibling(key: string): Promise<Buffer | undefined> {
    const source = this.sourceOf(key);
    return source.readIssuerSibling ? source.readIssuerSibling(key) : undefined;
  }

  private sourceOf(key: string): CertificateSource {
    const source = this.owner.get(key);
    if (!source) throw new Error(`unknown certificate ${key}`);
    return source;
  }
}

/**
 * These certificates of `source`, and only these: a keyed view for a run over a set chosen
 * elsewhere (the due index, a forced key list), as S3KeyedCertificateSource is for S3.
 */
export function keyedSource(
  source: CertificateSource,
  objects: readonly CertificateObject[],
): CertificateSource {
  return {
    description: source.description,
    list: () => Promise.resolve([...objects]),
    read: (key) => source.read(key),
    ...(source.readIssuerSibling ? { readIssuerSibling: source.readIssuerSibling.bind(source) } : {}),
  };
}
