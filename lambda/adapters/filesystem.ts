import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsync,
  linkSync,
  open as openCb,
  openSync,
  readFile as readFd,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { DEFAULT_NAMING, isCertificateKey, issuerSiblingKeyFor } from '../renew/ports.js';
import type {
  CertificateObject,
  CertificateSource,
  NamingOptions,
  StapleStore,
  StoredStaple,
  ConditionalPut,
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
      const info = await stat(path.join(this.dir, this.onlyFile), { bigint: true });
      return [{ key: this.onlyFile, tag: fileTag(info) }];
    }
    const tags = await walkTags(
      this.dir,
      (key, name) => !name.startsWith('.') && isCertificateKey(key, this.naming),
    );
    return [...tags].map(([key, tag]) => ({ key, tag }));
  }

  /** The file's bytes; refused when larger than MAX_CERTIFICATE_FILE_BYTES (checked on the open file). */
  async read(key: string): Promise<Buffer> {
    const { data } = await readWholeFile(this.resolve(key), (size) => {
      if (size > MAX_CERTIFICATE_FILE_BYTES) {
        throw new Error(
          `${(size / 1024 / 1024).toFixed(1)} MiB is too large for a certificate file (limit 1 MiB)`,
        );
      }
    });
    return data;
  }

  readIssuerSibling(key: string): Promise<Buffer | undefined> {
    return readIssuerSiblingFile(this.resolve(key), this.naming);
  }

  private resolve(key: string): string {
    return resolveInside(this.dir, key);
  }
}

/** Reads `<name>.issuer.pem` beside a certificate file; undefined when there is none. */
export function readIssuerSiblingFile(
  certFile: string,
  naming: NamingOptions = DEFAULT_NAMING,
): Promise<Buffer | undefined> {
  return readOptional(
    path.join(path.dirname(certFile), issuerSiblingKeyFor(path.basename(certFile), naming)),
  );
}

/** Staples in a directory; writes are atomic (temp file, fsync, rename) and keep the file mode. */
export class FsStapleStore implements StapleStore {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = `dir ${dir}`;
  }

  /** The bytes and the tag of one open file, so the tag is that of the bytes read (see fileTag). */
  async get(key: string): Promise<StoredStaple | undefined> {
    try {
      const { data, info } = await readWholeFile(resolveInside(this.dir, key));
      return { der: data, tag: fileTag(info) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async put(key: string, der: Buffer): Promise<string | undefined> {
    return fileTag(await writeFileAtomic(resolveInside(this.dir, key), der, STAPLE_WRITE));
  }

  /**
   * Key → tag of every file under the directory (staples and withheld markers; not temp files, not
   * hidden directories), in one walk: what lets a run trust its state without reading a staple.
   * A staple replaced or deleted behind the renewer's back has another tag, or none.
   */
  list(): Promise<Map<string, string>> {
    return walkTags(this.dir, (_key, name) => !isTempFileName(name));
  }

  async delete(key: string): Promise<void> {
    await unlink(resolveInside(this.dir, key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async putMarker(key: string, text: string): Promise<void> {
    await writeFileAtomic(resolveInside(this.dir, key), Buffer.from(text, 'utf8'), STAPLE_WRITE);
  }

  /**
   * The filesystem's nearest thing to a conditional write. No staple expected: the temp file is
   * hard-linked to the name, which fails if another writer created it first (atomic; where the
   * filesystem has no hard links, an existence check before the rename instead). A staple
   * expected: its tag is compared just before the rename; a writer that renames in the
   * microseconds between the two still wins, so this narrows the lost-update window to that gap
   * rather than closing it (S3 closes it).
   */
  async putIfUnchanged(
    key: string,
    der: Buffer,
    _meta: unknown,
    expectedTag: string | null,
  ): Promise<ConditionalPut> {
    const file = resolveInside(this.dir, key);
    const written = await writeFileGuarded(
      file,
      der,
      (temp) => {
        if (expectedTag === null) {
          try {
            linkSync(temp, file);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code ?? '';
            if (code === 'EEXIST') return false;
            if (!NO_HARD_LINKS.has(code)) throw err;
            // A filesystem without hard links: check, then rename (the same gap as a replace).
            if (currentTagSync(file)) return false;
            renameSync(temp, file);
            return true;
          }
          unlinkSync(temp);
          return true;
        }
        if (currentTagSync(file) !== expectedTag) return false;
        renameSync(temp, file);
        return true;
      },
      // No staple expected: if there is one, the install refuses, so its mode is never needed.
      { ...STAPLE_WRITE, newFile: expectedTag === null },
    );
    return written ? { written: true, tag: fileTag(written) } : { written: false };
  }

  /**
   * Removes the temp files a killed run left behind (`kill -9` between create and rename), at any
   * depth: only regular files named the way `writeFileAtomic` names them and last written more
   * than `STALE_TEMP_MS` before `now`, so a write in flight (milliseconds) is never touched and
   * nothing else is. Symbolic links are neither followed nor removed. Returns the removed paths.
   */
  async removeStaleTempFiles(now: Date): Promise<string[]> {
    const removed: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [];
        throw err;
      });
      for (const entry of entries) {
        const file = path.join(dir, entry.name);
        // Hidden directories hold no staples (sources skip them): `.snapshot`, `.git` are not ours.
        if (entry.isDirectory()) {
          if (!entry.name.startsWith('.')) await walk(file);
        } else if (entry.isFile() && isTempFileName(entry.name)) {
          const info = await lstat(file).catch(() => undefined);
          if (info?.isFile() && now.getTime() - info.mtimeMs > STALE_TEMP_MS) {
            try {
              await unlink(file);
              removed.push(file);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
            }
          }
        }
      }
    };
    await walk(this.dir);
    return removed;
  }
}

/**
 * How old a temp file must be before a run removes it. A live write holds its temp file for the
 * time of one write, fsync and rename of a staple (milliseconds; seconds on a slow disk); ten
 * minutes is far beyond that, and beyond the mtime skew of a network file system shared by hosts.
 */
export const STALE_TEMP_MS = 10 * 60_000;

/**
 * A file's change tag: inode, size and mtime in nanoseconds. A rewrite in place changes the mtime
 * (ns precision, not the ms of `mtimeMs`, so two writes in one millisecond differ), a replacement
 * by rename (ours, an editor's, `cp` to a temp then `mv`) brings another inode, a truncation the size.
 */
function fileTag(info: BigIntStats): string {
  return `${info.ino}-${info.size}-${info.mtimeNs}`;
}

/** The tag of the file there now, or undefined when there is none. */
function currentTagSync(file: string): string | undefined {
  try {
    const info = statSync(file, { bigint: true, throwIfNoEntry: false });
    return info && fileTag(info);
  } catch {
    return undefined;
  }
}

/** What link() says on filesystems that have no hard links (some network and FAT mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * Key (relative, `/` separators) → fileTag of the regular files under `dir` that `keep` picks,
 * skipping hidden directories; a missing `dir` is empty. One pass; each entry is stat'ed
 * synchronously: a stat of a directory entry just read is served from the kernel's cache in
 * microseconds, where a promise per file through the thread pool cost ~10 times that (and most of
 * a quiet run's time at 10 000 certificates).
 */
async function walkTags(
  dir: string,
  keep: (key: string, name: string) => boolean,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true }).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' && rel === '') return [];
        throw err;
      },
    );
    for (const entry of entries) {
      const key = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!entry.name.startsWith('.')) await walk(key);
      } else if (keep(key, entry.name)) {
        let info: BigIntStats | undefined;
        try {
          info = statSync(path.join(dir, key), { bigint: true, throwIfNoEntry: false });
        } catch {
          info = undefined; // gone or unreadable since the listing: not listed
        }
        if (info?.isFile()) out.set(key, fileTag(info));
      }
    }
  };
  await walk('');
  return out;
}

const TEMP_NAME = /^\..+\.tmp-[0-9a-f]{12}$/;

/** `.<name>.tmp-<12 hex digits>`, the temp file `writeFileAtomic` writes beside `<name>`. */
export function tempFileFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
}

/** Whether a file name is one `tempFileFor` makes (and so ours to remove when stale). */
export function isTempFileName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/**
 * How staples and markers are written: the file is fsync'ed before its rename (without it a crash
 * can leave an empty or torn staple on file systems that do not order data before the rename),
 * the directory is not fsync'ed after it. A crash that loses the rename leaves the old staple,
 * whole and valid as before, whose tag is not the one the state recorded: the next run reads it
 * again and renews it. One directory fsync per staple was a second synchronous disk flush for
 * every certificate of a forced run.
 */
const STAPLE_WRITE = { syncDirectory: false };

/**
 * Writes `data` to `file` so that readers see the old content or the new, never a torn file: a
 * temp file in the same directory, fsync, rename over the target, fsync the directory (unless
 * `syncDirectory` is false: the rename is then durable at the file system's next commit). The
 * target's mode is kept (0644 for a new file). The temp file is removed on any failure. Returns
 * the written file's stat (its tag, see fileTag).
 */
export async function writeFileAtomic(
  file: string,
  data: Buffer,
  options: { syncDirectory?: boolean } = {},
): Promise<BigIntStats> {
  const written = await writeFileGuarded(
    file,
    data,
    (temp) => {
      renameSync(temp, file);
      return true;
    },
    options,
  );
  return written!;
}

const fsyncFd = promisify(fsync);
const openFd = promisify(openCb);

/**
 * writeFileAtomic with `install` in place of the rename: false leaves the target alone (the temp
 * file is removed) and gives undefined. `newFile`: `install` refuses whenever the target exists,
 * so the new file's mode is 0644 without a stat of the target.
 *
 * The create and the fsync go through the thread pool: the fsync waits for the disk, and creating
 * the temp file allocates an inode, which on ext4 scans past every inode freed in the last half
 * minute (each staple replaced frees one): ~0.25 ms of kernel time per staple in a forced run,
 * spent on the pool's threads instead of this one. Every other call (write, fchmod, fstat, close,
 * the install's link or rename, unlink) is a metadata or page-cache operation of microseconds on a
 * staple of a few KB, made on the event loop as readWholeFile's reads are: through fs/promises
 * each was a thread-pool round trip. The conditional install's tag check and its rename (or the
 * link and the unlink) are now consecutive calls with nothing of this process between them, which
 * narrows the window another writer can slip into. A file system that blocks (a network mount)
 * stalls the loop for the call, as the listing's stat and the reads do.
 */
async function writeFileGuarded(
  file: string,
  data: Buffer,
  install: (temp: string) => boolean,
  { syncDirectory = true, newFile = false }: { syncDirectory?: boolean; newFile?: boolean } = {},
): Promise<BigIntStats | undefined> {
  const dir = path.dirname(file);
  const mode = newFile ? 0o644 : modeOf(file);
  const temp = tempFileFor(file);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
  let fd: number;
  try {
    fd = await openFd(temp, flags, mode);
  } catch (err) {
    // The directory is created only when it is missing (one call less per staple otherwise).
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dir, { recursive: true });
    fd = await openFd(temp, flags, mode);
  }
  let written: BigIntStats;
  try {
    for (let at = 0; at < data.length;) at += writeSync(fd, data, at, data.length - at);
    fchmodSync(fd, mode); // open's mode passes through the umask; the target's mode must not
    await fsyncFd(fd);
    // The file as written: a rename keeps its inode and mtime, so this is the target's tag.
    written = fstatSync(fd, { bigint: true });
    closeSync(fd);
    fd = -1;
    if (!install(temp)) {
      unlinkQuietly(temp);
      return undefined;
    }
  } catch (err) {
    if (fd >= 0) closeQuietly(fd);
    unlinkQuietly(temp);
    throw err;
  }
  // The mode was set on the temp file (fchmod, past the umask): the target is that same inode now.
  if (!syncDirectory) return written;
  const dirHandle = await open(dir, constants.O_RDONLY).catch(() => undefined);
  await dirHandle?.sync().catch(() => undefined);
  await dirHandle?.close();
  return written;
}

/** The file's permission bits; a new file's (no file there, or none we may stat) is 0644. */
function modeOf(file: string): number {
  try {
    return statSync(file).mode & 0o7777;
  } catch {
    return 0o644;
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone, or not ours to remove any more: nothing to clean up
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // the write's own error is the one worth reporting
  }
}

/**
 * Files up to this size are read on the event loop by readWholeFile; larger ones (no certificate:
 * they are refused at 1 MiB; a staple never is that large) through the thread pool.
 */
const SYNC_READ_MAX_BYTES = MAX_CERTIFICATE_FILE_BYTES;

const readFdToEnd = promisify(readFd) as (fd: number) => Promise<Buffer>;

/**
 * A whole file and the fstat of the descriptor it was read from, so that stat (a tag, see fileTag)
 * describes the bytes read whatever renames happen meanwhile; a writer rewriting the file in place
 * during the read changes its mtime after the fstat, so the tag can only be older than the bytes,
 * never newer, and the next run reads the file again. `check` sees the size before anything is
 * read (it throws to refuse the file), and the length read when the file grew in between.
 *
 * Files up to 1 MiB are read synchronously: open, fstat, one read into a buffer of the file's size
 * plus one byte (a read that fills it means the file grew: the rest is read to the end, as
 * readFile does), close. Certificates and staples are a few KB and the listing has just stat'ed
 * them (their inodes are in the kernel's cache): the four calls take ~10 µs on the event loop,
 * where fs/promises' stat + readFile were six thread-pool round trips costing 50 to 100 µs of CPU
 * a file (measured on 5 000 leaf bundles; fs was 17 % of a forced run's profile). The run's time
 * goes to the network, which keeps its concurrency: a read that blocks (a cold disk, a network
 * file system) stalls the loop for that one read of at most 1 MiB, as the listing's stat does.
 */
async function readWholeFile(
  file: string,
  check?: (size: number) => void,
): Promise<{ data: Buffer; info: BigIntStats }> {
  const fd = openSync(file, constants.O_RDONLY);
  try {
    const info = fstatSync(fd, { bigint: true });
    const size = Number(info.size);
    check?.(size);
    if (size > SYNC_READ_MAX_BYTES) return { data: await readFdToEnd(fd), info };
    const buffer = Buffer.allocUnsafe(size + 1);
    const length = readSync(fd, buffer, 0, buffer.length, null);
    if (length <= size) return { data: buffer.subarray(0, length), info };
    const data = Buffer.concat([buffer, await readFdToEnd(fd)]);
    check?.(data.length);
    return { data, info };
  } finally {
    closeSync(fd);
  }
}

/** A file's content, or undefined when it does not exist; other errors are thrown. */
export async function readOptional(file: string): Promise<Buffer | undefined> {
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
