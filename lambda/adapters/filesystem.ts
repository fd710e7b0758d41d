import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_NAMING,
  isCertificateKey,
  issuerSiblingKeyFor,
  type CertificateObject,
  type CertificateSource,
  type NamingOptions,
  type StapleStore,
  type StoredStaple,
} from '../renew/ports.js';

/** Certificate files larger than this are refused before they are read. */
export const MAX_CERTIFICATE_FILE_BYTES = 1024 * 1024;

/**
 * Certificates in a directory tree; keys are paths relative to it with `/` separators. With
 * `onlyFile`, just that one file of the directory (`--certs FILE`), whatever its extension.
 */
export class FsCertificateSource implements CertificateSource {
  readonly description: string;

  constructor(
    private readonly dir: string,
    private readonly naming: NamingOptions = DEFAULT_NAMING,
    private readonly onlyFile?: string,
  ) {
    this.description = onlyFile ? `file ${path.join(dir, onlyFile)}` : `dir ${dir}`;
  }

  async list(): Promise<CertificateObject[]> {
    if (this.onlyFile !== undefined) {
      const info = await stat(path.join(this.dir, this.onlyFile));
      return [{ key: this.onlyFile, tag: `${info.mtimeMs}-${info.size}` }];
    }
    const out: CertificateObject[] = [];
    const walk = async (rel: string) => {
      const entries = await readdir(path.join(this.dir, rel), { withFileTypes: true });
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const key = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) await walk(key);
        else if (isCertificateKey(key, this.naming)) {
          const info = await stat(path.join(this.dir, key)).catch(() => undefined);
          if (info?.isFile()) out.push({ key, tag: `${info.mtimeMs}-${info.size}` });
        }
      }
    };
    await walk('');
    return out;
  }

  async read(key: string): Promise<Buffer> {
    const file = this.resolve(key);
    const { size } = await stat(file);
    if (size > MAX_CERTIFICATE_FILE_BYTES) {
      throw new Error(
        `${(size / 1024 / 1024).toFixed(1)} MiB is too large for a certificate file (limit 1 MiB)`,
      );
    }
    return readFile(file);
  }

  async readIssuerSibling(key: string): Promise<Buffer | undefined> {
    return readOptional(this.resolve(issuerSiblingKeyFor(key, this.naming)));
  }

  private resolve(key: string): string {
    return resolveInside(this.dir, key);
  }
}

/** Staples in a directory; writes are atomic (temp file, fsync, rename) and keep the file mode. */
export class FsStapleStore implements StapleStore {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = `dir ${dir}`;
  }

  async get(key: string): Promise<StoredStaple | undefined> {
    const file = resolveInside(this.dir, key);
    const der = await readOptional(file);
    if (!der) return undefined;
    const info = await stat(file);
    return { der, tag: `${info.mtimeMs}-${info.size}` };
  }

  async put(key: string, der: Buffer): Promise<string | undefined> {
    const file = resolveInside(this.dir, key);
    await writeFileAtomic(file, der);
    const info = await stat(file);
    return `${info.mtimeMs}-${info.size}`;
  }

  async delete(key: string): Promise<void> {
    await unlink(resolveInside(this.dir, key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async putMarker(key: string, text: string): Promise<void> {
    await writeFileAtomic(resolveInside(this.dir, key), Buffer.from(text, 'utf8'));
  }
}

/**
 * Writes `data` to `file` so that readers see the old content or the new, never a torn file: a
 * temp file in the same directory, fsync, rename over the target, fsync the directory. The
 * target's mode is kept (0644 for a new file). The temp file is removed on any failure.
 */
export async function writeFileAtomic(file: string, data: Buffer): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const mode = await stat(file).then(
    (s) => s.mode & 0o7777,
    () => 0o644,
  );
  const temp = path.join(dir, `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode);
    await handle.sync();
    await handle.close();
    await rename(temp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await chmod(file, mode).catch(() => undefined);
  const dirHandle = await open(dir, constants.O_RDONLY).catch(() => undefined);
  await dirHandle?.sync().catch(() => undefined);
  await dirHandle?.close();
}

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function resolveInside(dir: string, key: string): string {
  const full = path.resolve(dir, key);
  const root = path.resolve(dir);
  if (full !== root && !full.startsWith(root + path.sep)) throw new Error(`key ${key} escapes ${dir}`);
  return full;
}
