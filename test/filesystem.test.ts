/**
 * The filesystem staple store's clean-up of temp files a killed run left behind: only stale files
 * of our own naming go, at any depth; anything else (a look-alike name, a fresh write in flight, a
 * symbolic link, a hidden directory) stays. Reads give every byte with the tag of the file read,
 * writes keep a staple's mode, and every read is bounded (issue 20): a certificate, issuer or
 * staple over 1 MiB is refused, and so is anything that is not a regular file (/dev/zero, a FIFO)
 * and a file longer than its size says.
 */
import { execFileSync } from 'node:child_process';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readBoundedFile } from '../lambda/adapters/bounded-file.js';
import {
  FsCertificateSource,
  FsStapleStore,
  isTempFileName,
  MAX_CERTIFICATE_FILE_BYTES,
  STALE_TEMP_MS,
  tempFileFor,
} from '../lambda/adapters/filesystem.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const STALE = new Date(NOW.getTime() - STALE_TEMP_MS - 60_000);
const FRESH = new Date(NOW.getTime() - 60_000);

let dir: string;
let outside: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-fs-'));
  outside = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-fs-outside-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

/** Writes `rel` under `root` with its mtime set to `at`. */
async function put(root: string, rel: string, at: Date): Promise<string> {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, 'x');
  await utimes(file, at, at);
  return file;
}

async function tree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).sort();
}

describe('isTempFileName', () => {
  it('should match the temp file name writeFileAtomic makes beside a staple', () => {
    const temp = path.basename(tempFileFor('/srv/staples/mail.example.com.ocsp'));
    expect(temp).toMatch(/^\.mail\.example\.com\.ocsp\.tmp-[0-9a-f]{12}$/);
    expect(isTempFileName(temp)).toBe(true);
  });

  it.each([
    'mail.ocsp.tmp-0123456789ab', // no leading dot
    '.mail.ocsp.tmp-backup', // not 12 hex digits
    '.mail.ocsp.tmp-0123456789abc', // 13
    '.mail.ocsp.tmp-0123456789AB', // upper case: never ours
    '.mail.ocsp.tmp-0123456789ab.bak',
    '..tmp-0123456789ab', // no name
    '.mail.ocsp',
  ])('should not match %s', (name) => {
    expect(isTempFileName(name)).toBe(false);
  });
});

describe('FsStapleStore.removeStaleTempFiles', () => {
  it('should remove only stale temp files of our own naming, at any depth', async () => {
    const staleOurs = await put(dir, '.good.ocsp.tmp-0123456789ab', STALE);
    const staleDeep = await put(dir, 'mail/eu/.a.ocsp.tmp-abcdefabcdef', STALE);
    await put(dir, '.good.ocsp.tmp-fedcba987654', FRESH); // a write in flight
    await put(dir, '.good.ocsp.tmp-backup', STALE); // a look-alike, not ours
    await put(dir, 'good.ocsp.tmp-0123456789ab', STALE); // no leading dot
    await put(dir, 'good.ocsp', STALE);
    await put(dir, '.hidden/.a.ocsp.tmp-0123456789ab', STALE); // hidden directories are not walked
    const target = await put(outside, 'victim', STALE);
    await symlink(target, path.join(dir, '.link.ocsp.tmp-0123456789ab'));
    await mkdir(path.join(dir, '.dir.ocsp.tmp-0123456789ab'));

    const removed = await new FsStapleStore(dir).removeStaleTempFiles(NOW);

    expect(removed.sort()).toEqual([staleOurs, staleDeep].sort());
    expect(await tree(dir)).toEqual(
      [
        '.dir.ocsp.tmp-0123456789ab',
        '.good.ocsp.tmp-backup',
        '.good.ocsp.tmp-fedcba987654',
        '.hidden',
        '.hidden/.a.ocsp.tmp-0123456789ab',
        '.link.ocsp.tmp-0123456789ab',
        'good.ocsp',
        'good.ocsp.tmp-0123456789ab',
        'mail',
        'mail/eu',
      ].sort(),
    );
    expect(await tree(outside)).toEqual(['victim']);
  });

  it('should keep a temp file exactly at the stale age, and remove it a moment later', async () => {
    const at = new Date(NOW.getTime() - STALE_TEMP_MS);
    const file = await put(dir, '.good.ocsp.tmp-0123456789ab', at);
    expect(await new FsStapleStore(dir).removeStaleTempFiles(NOW)).toEqual([]);
    expect(await new FsStapleStore(dir).removeStaleTempFiles(new Date(NOW.getTime() + 1_000))).toEqual([
      file,
    ]);
  });

  it('should do nothing when the staples directory does not exist yet', async () => {
    await expect(new FsStapleStore(path.join(dir, 'none')).removeStaleTempFiles(NOW)).resolves.toEqual([]);
  });
});

describe('FsStapleStore tags', () => {
  it('should list staples and markers with the tags get and put give, skipping temp files and hidden directories', async () => {
    const store = new FsStapleStore(dir);
    const putTag = await store.put('a/one.ocsp', Buffer.from('one'));
    await store.putMarker('a/two.ocsp.withheld', 'withheld\n');
    await put(dir, `a/${path.basename(tempFileFor(path.join(dir, 'a/one.ocsp')))}`, STALE);
    await put(dir, '.snapshot/old.ocsp', STALE);
    const listed = await store.list();
    expect([...listed.keys()].sort()).toEqual(['a/one.ocsp', 'a/two.ocsp.withheld']);
    expect(listed.get('a/one.ocsp')).toBe(putTag);
    expect((await store.get('a/one.ocsp'))?.tag).toBe(putTag);
  });

  it('should give a new tag to a rewrite of the same size within the same millisecond, and to a replacement', async () => {
    const store = new FsStapleStore(dir);
    const first = await store.put('one.ocsp', Buffer.from('aaaa'));
    await writeFile(path.join(dir, 'one.ocsp'), 'bbbb');
    const rewritten = (await store.list()).get('one.ocsp');
    expect(rewritten).not.toBe(first);
    const replaced = await store.put('one.ocsp', Buffer.from('bbbb'));
    expect(replaced).not.toBe(rewritten);
    expect((await store.get('one.ocsp'))?.tag).toBe(replaced);
  });

  it('should list nothing when the staples directory does not exist yet', async () => {
    expect((await new FsStapleStore(path.join(dir, 'missing')).list()).size).toBe(0);
  });
});

describe('FsStapleStore and FsCertificateSource reads', () => {
  const sizes = [0, 1, 4096, MAX_CERTIFICATE_FILE_BYTES];

  it.each(sizes)('should get a staple of %i bytes whole, with the tag the listing gives', async (size) => {
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
    await writeFile(path.join(dir, 'one.ocsp'), bytes);
    const store = new FsStapleStore(dir);
    const got = await store.get('one.ocsp');
    expect(got?.der.equals(bytes)).toBe(true);
    expect(got?.tag).toBe((await store.list()).get('one.ocsp'));
  });

  it('should give undefined for a missing staple, and refuse a directory and a staple over 1 MiB', async () => {
    await mkdir(path.join(dir, 'dir.ocsp'));
    await writeFile(path.join(dir, 'big.ocsp'), Buffer.alloc(MAX_CERTIFICATE_FILE_BYTES + 1));
    const store = new FsStapleStore(dir);
    await expect(store.get('missing.ocsp')).resolves.toBeUndefined();
    await expect(store.get('dir.ocsp')).rejects.toThrow(
      'a staple file must be a regular file, not a directory',
    );
    await expect(store.get('big.ocsp')).rejects.toThrow(
      '1.0 MiB is too large for a staple file (limit 1 MiB)',
    );
  });

  // A staple or <name>.issuer.pem that is a symlink to /dev/zero was read forever (9.7 GB in 30 s);
  // a FIFO named *.pem hung the open.
  it('should refuse a staple, a certificate and an issuer sibling that are symlinks to /dev/zero, at once', async () => {
    await symlink('/dev/zero', path.join(dir, 'zero.ocsp'));
    await symlink('/dev/zero', path.join(dir, 'zero.pem'));
    await writeFile(path.join(dir, 'a.pem'), 'not read');
    await symlink('/dev/zero', path.join(dir, 'a.issuer.pem'));
    const store = new FsStapleStore(dir);
    const source = new FsCertificateSource(dir);
    await expect(store.get('zero.ocsp')).rejects.toThrow(
      'a staple file must be a regular file, not a character device',
    );
    await expect(source.read('zero.pem')).rejects.toThrow(
      'a certificate file must be a regular file, not a character device',
    );
    await expect(source.readIssuerSibling('a.pem')).rejects.toThrow(
      'an issuer file must be a regular file, not a character device',
    );
  });

  it('should refuse a FIFO named like a certificate without hanging on its open', async () => {
    execFileSync('mkfifo', [path.join(dir, 'fifo.pem')]);
    await expect(new FsCertificateSource(dir).read('fifo.pem')).rejects.toThrow(
      'a certificate file must be a regular file, not a FIFO',
    );
  });

  it('should stop at the cap whatever the size says: a /proc file (size 0) read to a 64-byte cap', () => {
    expect(Number(execFileSync('stat', ['-c', '%s', '/proc/self/maps'], { encoding: 'utf8' }))).toBe(0);
    expect(readBoundedFile('/proc/self/maps', 'a test file').data.length).toBeGreaterThan(64);
    expect(() => readBoundedFile('/proc/self/maps', 'a test file', 64)).toThrow(
      'too large for a test file: more than the limit 64 bytes',
    );
  });

  it('should read a certificate through a symlink to a regular file (certbot live/ links)', async () => {
    await writeFile(path.join(outside, 'real.pem'), 'certificate bytes');
    await symlink(path.join(outside, 'real.pem'), path.join(dir, 'live.pem'));
    expect((await new FsCertificateSource(dir).read('live.pem')).toString()).toBe('certificate bytes');
  });

  it('should read a certificate file of exactly 1 MiB and refuse one a byte larger', async () => {
    await writeFile(path.join(dir, 'max.pem'), Buffer.alloc(MAX_CERTIFICATE_FILE_BYTES, 0x41));
    await writeFile(path.join(dir, 'big.pem'), Buffer.alloc(MAX_CERTIFICATE_FILE_BYTES + 1, 0x41));
    const source = new FsCertificateSource(dir);
    expect((await source.read('max.pem')).length).toBe(MAX_CERTIFICATE_FILE_BYTES);
    await expect(source.read('big.pem')).rejects.toThrow(
      '1.0 MiB is too large for a certificate file (limit 1 MiB)',
    );
    await expect(source.read('missing.pem')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('FsStapleStore conditional writes', () => {
  it('should write every staple 0644, new or replacing one of another mode (issue 20: never a copied mode)', async () => {
    const store = new FsStapleStore(dir);
    const first = await store.putIfUnchanged('a/one.ocsp', Buffer.from('one'), undefined, null);
    expect(first.written).toBe(true);
    expect((await stat(path.join(dir, 'a/one.ocsp'))).mode & 0o7777).toBe(0o644);
    await chmod(path.join(dir, 'a/one.ocsp'), 0o4750);
    const tag = (await store.get('a/one.ocsp'))!.tag!;
    const second = await store.putIfUnchanged('a/one.ocsp', Buffer.from('two'), undefined, tag);
    expect(second.written).toBe(true);
    expect((await stat(path.join(dir, 'a/one.ocsp'))).mode & 0o7777).toBe(0o644);
  });

  it('should write a withheld marker 0644 too, replacing one of another mode (docs/cli.md)', async () => {
    const store = new FsStapleStore(dir);
    const marker = path.join(dir, 'a/two.ocsp.withheld');
    await store.putMarker('a/two.ocsp.withheld', 'withheld\n');
    expect((await stat(marker)).mode & 0o7777).toBe(0o644);
    await chmod(marker, 0o4750);
    await store.putMarker('a/two.ocsp.withheld', 'withheld again\n');
    expect((await stat(marker)).mode & 0o7777).toBe(0o644);
    expect(await readFile(marker, 'utf8')).toBe('withheld again\n');
  });

  it('should replace a staple that is a symlink to a setuid file with a 0644 file, the target untouched', async () => {
    const target = path.join(outside, 'setuid-target');
    await writeFile(target, 'target');
    await chmod(target, 0o4755);
    await symlink(target, path.join(dir, 'linked.ocsp'));
    const store = new FsStapleStore(dir);
    await store.put('linked.ocsp', Buffer.from('staple'));
    const info = await lstat(path.join(dir, 'linked.ocsp'));
    expect(info.isFile()).toBe(true);
    expect(info.mode & 0o7777).toBe(0o644);
    expect(await readFile(target, 'utf8')).toBe('target');
    expect((await stat(target)).mode & 0o7777).toBe(0o4755);
  });

  it('should refuse to write, read or delete through a symlinked subdirectory (staples/sub -> elsewhere)', async () => {
    await symlink(outside, path.join(dir, 'sub'));
    await writeFile(path.join(outside, 'kept.ocsp'), 'theirs');
    const store = new FsStapleStore(dir);
    const escape = /^key sub\/[a-z.]+ escapes .*: sub is a link to /;
    await expect(store.put('sub/victim.ocsp', Buffer.from('x'))).rejects.toThrow(escape);
    await expect(store.putIfUnchanged('sub/victim.ocsp', Buffer.from('x'), undefined, null)).rejects.toThrow(
      escape,
    );
    await expect(store.putMarker('sub/victim.ocsp.withheld', 'x')).rejects.toThrow(escape);
    await expect(store.delete('sub/kept.ocsp')).rejects.toThrow(escape);
    await expect(store.get('sub/kept.ocsp')).rejects.toThrow(escape);
    await expect(store.put('sub/new/deeper.ocsp', Buffer.from('x'))).rejects.toThrow(/escapes/);
    expect((await readdir(outside)).sort()).toEqual(['kept.ocsp']);
    // A staples directory that is itself a link is fine: containment is judged on its real path.
    const linkedRoot = path.join(outside, 'root-link');
    await symlink(dir, linkedRoot);
    await new FsStapleStore(linkedRoot).put('inside.ocsp', Buffer.from('ok'));
    expect(await readFile(path.join(dir, 'inside.ocsp'), 'utf8')).toBe('ok');
  });

  it('should leave a staple another writer created alone when none was expected', async () => {
    await writeFile(path.join(dir, 'one.ocsp'), 'theirs');
    const store = new FsStapleStore(dir);
    await expect(store.putIfUnchanged('one.ocsp', Buffer.from('ours'), undefined, null)).resolves.toEqual({
      written: false,
    });
    expect(await readFile(path.join(dir, 'one.ocsp'), 'utf8')).toBe('theirs');
    expect(await tree(dir)).toEqual(['one.ocsp']);
  });
});
