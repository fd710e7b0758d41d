import type { CertificateSource } from '../renew/ports.js';

/**
 * `--exclude <glob>`, as .gitignore reads a pattern: one with a `/` matches a certificate's path
 * relative to --certs, one without matches its file name at any depth. `*` is any characters
 * but `/`, `**` any characters, `?` one character but `/`.
 * @example excludedBy(['cert.pem'])('example.com/cert.pem') === true
 */
export function excludedBy(globs: readonly string[]): (key: string) => boolean {
  const tests = globs.map((glob) => {
    const re = globRegExp(glob.replace(/^\/+/, ''));
    return glob.includes('/') ? (key: string) => re.test(key) : (key: string) => re.test(baseName(key));
  });
  return (key) => tests.some((test) => test(key));
}

function globRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` also matches no directory at all.
      source += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

const baseName = (key: string) => key.slice(key.lastIndexOf('/') + 1);

/** The source without the certificates the globs exclude (none: the source itself). */
export function excluding(source: CertificateSource, globs: readonly string[]): CertificateSource {
  if (globs.length === 0) return source;
  const excluded = excludedBy(globs);
  return {
    description: source.description,
    list: async () => (await source.list()).filter((object) => !excluded(object.key)),
    read: (key) => source.read(key),
    ...(source.readIssuerSibling
      ? { readIssuerSibling: (key: string) => source.readIssuerSibling!(key) }
      : {}),
  };
}
