import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_NAMING,
  isCertificateKey,
  issuerSiblingKeyFor,
  type CertificateObject,
  type CertificateSource,
  type ConditionalPut,
  type NamingOptions,
  type StapleStore,
  type StoredStaple,
} from '../renew/ports.js';

/** Certificates in a directory tree; keys are paths relative to it with `/` separators. */
export class FsCertificateSource implements CertificateSource {
  readonly description: string;

  constructor(
    private readonly dir: string,
    private readonly naming: NamingOptions = DEFAULT_NAMING,
  ) {
    this.description = `dir ${dir}`;
  }

  async list(): Promise<CertificateObject[]> {
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

  read(key: string): Promise<Buffer> {
    return readFile(this.resolve(key));
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
    return fileTag(file);
  }

  /**
   * The filesystem's nearest thing to a conditional write. No staple expected: the temp file is
   * hard-linked to the name, which fails if another writer created it first (atomic; where the
   * filesystem has no hard links, an existence check before the rename instead). A staple
   * expected: its tag (mtime-size) is compared just before the rename; a writer that renames in
   * the microseconds between the two still wins, so this narrows the lost-update window to that
   * gap rather than closing it (S3 closes it).
   */
  async putIfUnchanged(
    key: string,
    der: Buffer,
    _meta: unknown,
    expectedTag: string | null,
  ): Promise<ConditionalPut> {
    const file = resolveInside(this.dir, key);
    const installed = await writeFileGuarded(file, der, async (temp) => {
      if (expectedTag === null) {
        try {
          await link(temp, file);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? '';
          if (code === 'EEXIST') return false;
          if (!NO_HARD_LINKS.has(code)) throw err;
          // A filesystem without hard links: check, then rename (the same gap as a replace).
          if (await fileTag(file).catch(() => undefined)) return false;
          await rename(temp, file);
          return true;
        }
        await unlink(temp);
        return true;
      }
      if ((await fileTag(file).catch(() => undefined)) !== expectedTag) return false;
      await rename(temp, file);
      return true;
    });
    return installed ? { written: true, tag: await fileTag(file) } : { written: false };
  }
}

/** What link() says on filesystems that have no hard links (some network and FAT mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

async function fileTag(file: string): Promise<string> {
  const info = await stat(file);
  return `${info.mtimeMs}-${info.size}`;
}

/**
 * Writes `data` to `file` so that readers see the old content or the new, never a torn file: a
 * temp file in the same directory, fsync, rename over the target, fsync the directory. The
 * target's mode is kept (0644 for a new file). The temp file is removed on any failure.
 */
export async function writeFileAtomic(file: string, data: Buffer): Promise<void> {
  await writeFileGuarded(file, data, async (temp) => {
    await rename(temp, file);
    return true;
  });
}

/** writeFileAtomic with `install` in place of the rename; false leaves the target alone. */
async function writeFileGuarded(
  file: string,
  data: Buffer,
  install: (temp: string) => Promise<boolean>,
): Promise<boolean> {
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
    if (!(await install(temp))) {
      await unlink(temp).catch(() => undefined);
      return false;
    }
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await chmod(file, mode).catch(() => undefined);
  const dirHandle = await open(dir, constants.O_RDONLY).catch(() => undefined);
  await dirHandle?.sync().catch(() => undefined);
  await dirHandle?.close();
  return true;
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
