import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsync,
  linkSync,
  lstatSync,
  realpathSync,
  open as openCb,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import {
  DEFAULT_NAMING,
  isCertificateKey,
  issuerSiblingKeyFor,
  MAX_CERTIFICATE_BYTES,
} from '../renew/ports.js';
import { readBoundedFile, readBoundedFileIfAny } from './bounded-file.js';
import type {
  CertificateObject,
  CertificateSource,
  NamingOptions,
  StapleStore,
  StoredStaple,
  ConditionalPut,
} from '../renew/ports.js';

/** Certificate files larger than this are refused (bounded-file.ts; the cap of every source). */
export const MAX_CERTIFICATE_FILE_BYTES = MAX_CERTIFICATE_BYTES;

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

  /** The file's bytes: a regular file of at most MAX_CERTIFICATE_FILE_BYTES (readBoundedFile). */
  async read(key: string): Promise<Buffer> {
    return readBoundedFile(this.resolve(key), 'a certificate file').data;
  }

  readIssuerSibling(key: string): Promise<Buffer | undefined> {
    return readIssuerSiblingFile(this.resolve(key), this.naming);
  }

  private resolve(key: string): string {
    return resolveInside(this.dir, key);
  }
}

/** Reads `<name>.issuer.pem` beside a certificate file (bounded); undefined when there is none. */
export async function readIssuerSiblingFile(
  certFile: string,
  naming: NamingOptions = DEFAULT_NAMING,
): Promise<Buffer | undefined> {
  const sibling = path.join(path.dirname(certFile), issuerSiblingKeyFor(path.basename(certFile), naming));
  return readBoundedFileIfAny(sibling, 'an issuer file')?.data;
}

/**
 * Staples in a directory; writes are atomic (temp file, fsync, rename), mode 0644. Every key is
 * checked on its real path (resolveInside): a symlinked subdirectory cannot take a write out.
 */
export class FsStapleStore implements StapleStore {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = `dir ${dir}`;
  }

  /**
   * The bytes and the tag of one open file, so the tag is that of the bytes read (see fileTag): a
   * regular file of at most 1 MiB (readBoundedFile; a staple is a few KB).
   */
  async get(key: string): Promise<StoredStaple | undefined> {
    const read = readBoundedFileIfAny(resolveInside(this.dir, key), 'a staple file');
    return read && { der: read.data, tag: fileTag(read.info) };
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

/**
 * The regular files under `dir` (symlinks to them too), relative with `/` separators, skipping
 * hidden directories and our temp files; a symlinked directory is never entered, so links to `.`
 * cannot make the walk endless. What `status` and `--issuers` list.
 */
export async function filesUnder(dir: string): Promise<string[]> {
  return [...(await walkTags(dir, (_key, name) => !isTempFileName(name))).keys()];
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
const STAPLE_WRITE = { syncDirectory: false, mode: 0o644 };

/**
 * Writes `data` to `file` so that readers see the old content or the new, never a torn file: a
 * temp file in the same directory, fsync, rename over the target, fsync the directory (unless
 * `syncDirectory` is false: the rename is then durable at the file system's next commit). The
 * mode is `mode` when given (staples: 0644, whatever was there), else the permission bits of the
 * regular file replaced (never a setuid, setgid or sticky bit, never a symlink target's), 0644
 * for a new file. The temp file is removed on any failure. Returns the written file's stat (its
 * tag, see fileTag).
 */
export async function writeFileAtomic(
  file: string,
  data: Buffer,
  options: { syncDirectory?: boolean; mode?: number } = {},
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
  {
    syncDirectory = true,
    newFile = false,
    mode: fixedMode,
  }: { syncDirectory?: boolean; newFile?: boolean; mode?: number } = {},
): Promise<BigIntStats | undefined> {
  const dir = path.dirname(file);
  const mode = fixedMode ?? (newFile ? 0o644 : modeOf(file));
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

/**
 * The permission bits of the regular file there (no setuid, setgid or sticky bit); 0644 for a new
 * file, a symlink (its target's mode is not ours to copy) or one we may not stat.
 */
function modeOf(file: string): number {
  try {
    const info = lstatSync(file);
    return info.isFile() ? info.mode & 0o777 : 0o644;
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

/** A file's content, or undefined when it does not exist; other errors are thrown. */
export async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * `key`'s path under `dir`, refused when it leaves `dir`: by its text (`..`), or on its real path,
 * the nearest existing directory on the way resolved through its symlinks, so `staples/sub ->
 * /elsewhere` takes no read, write or delete elsewhere. The file itself may be a symlink: a write
 * replaces the link (rename), never its target.
 */
export function resolveInside(dir: string, key: string): string {
  const full = path.resolve(dir, key);
  const root = path.resolve(dir);
  const within = (p: string, r: string) => p === r || p.startsWith(r + path.sep);
  if (!within(full, root)) throw new Error(`key ${key} escapes ${dir}`);
  const realRoot = realPathIfAny(root);
  if (realRoot === undefined) return full; // no directory yet: nothing to follow
  let parent = path.dirname(full);
  let real = realPathIfAny(parent);
  while (real === undefined && parent !== root) {
    parent = path.dirname(parent);
    real = realPathIfAny(parent);
  }
  if (real !== undefined && !within(real, realRoot)) {
    throw new Error(`key ${key} escapes ${dir}: ${path.relative(root, parent)} is a link to ${real}`);
  }
  return full;
}

/** The path with every symlink resolved, or undefined when it does not exist. */
function realPathIfAny(p: string): string | undefined {
  try {
    return realpathSync.native(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw err;
  }
}
