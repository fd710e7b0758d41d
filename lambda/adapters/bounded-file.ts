import { closeSync, constants, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { MAX_CERTIFICATE_BYTES, tooLargeError } from '../renew/ports.js';

/**
 * The one way a certificate, issuer or staple file is read, by `renew`, `status` and `inspect`:
 * a regular file only, never more than `maxBytes` whatever its size says.
 *
 * - Opened with O_NONBLOCK, so a FIFO named `x.pem` cannot hang the open, then refused by its
 *   fstat with anything else that is not a regular file (a symlink to /dev/zero, a device, a
 *   directory). A symlink to a regular file is read: certbot's live/ directory is symlinks.
 * - Read in a loop that stops one byte past `maxBytes`: a file growing while read, or one whose
 *   size the kernel does not know, is refused at the cap, never read to its end.
 *
 * The reads are synchronous, on the event loop: certificates and staples are a few KB and have
 * just been listed (their inodes are cached), so open, fstat, read and close take ~10 µs, where
 * a thread-pool round trip each cost 50 to 100 µs of CPU a file (measured on 5 000 leaf bundles).
 * A read that blocks (a cold disk, a network file system) stalls the loop for at most `maxBytes`.
 *
 * Returns the bytes and the fstat of the descriptor they were read from, so a tag made from it
 * (filesystem.ts `fileTag`) describes those bytes whatever renames happen meanwhile; a writer
 * rewriting the file in place during the read changes its mtime after the fstat, so the tag can
 * only be older than the bytes, never newer, and the next run reads the file again.
 */
export function readBoundedFile(
  file: string,
  what: string,
  maxBytes: number = MAX_CERTIFICATE_BYTES,
): { data: Buffer; info: BigIntStats } {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = fstatSync(fd, { bigint: true });
    if (!info.isFile()) throw new Error(`${what} must be a regular file, not ${kindOf(info)}`);
    const size = Number(info.size);
    if (size > maxBytes) throw tooLargeError(size, what, maxBytes);
    // The size said, plus one byte to see whether there is more; then on in chunks to the cap.
    let buffer = Buffer.allocUnsafe(size + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) throw tooLargeError(undefined, what, maxBytes);
      if (length === buffer.length) {
        const grown = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
    }
    return { data: buffer.subarray(0, length), info };
  } finally {
    closeSync(fd);
  }
}

/** readBoundedFile, or undefined when there is no such file. */
export function readBoundedFileIfAny(
  file: string,
  what: string,
  maxBytes: number = MAX_CERTIFICATE_BYTES,
): { data: Buffer; info: BigIntStats } | undefined {
  try {
    return readBoundedFile(file, what, maxBytes);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function kindOf(info: BigIntStats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'a special file';
}
