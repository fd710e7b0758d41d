/**
 * File-system errors said in the user's terms: the path, what the command was doing, plain words
 * for the error — never Node's message (`ENOTDIR: not a directory, mkdir '…'`) nor a stack. The
 * cases are ones that fail as root too (the tests run as root, where chmod cannot make EACCES):
 * a path under a regular file (ENOTDIR), a directory where a file goes (EISDIR), a symbolic link
 * loop (ELOOP), /dev/full (ENOSPC). Each runs the real command as a child process.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockFileFor } from '../lambda/cli/locations.js';
import { errorMessage, fileErrorMessage } from '../lambda/core/errors.js';
import { DEV_BIN, runToEnd } from './helpers/cli-process.js';

const NOT_A_DIRECTORY = 'not a directory (a part of the path is a file)';
const A_DIRECTORY = 'it is a directory, where a file is expected';
/** What Node's own messages look like: none may reach the user. */
const NODE_MESSAGE = /E[A-Z]{3,}:|illegal operation|\bat .*\(.*:\d+:\d+\)/;

let work: string;
/** A regular file, for paths that go through it (ENOTDIR). */
let file: string;
let certs: string;
let staples: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-file-errors-'));
  file = path.join(work, 'a-file');
  await writeFile(file, 'not a directory\n');
  certs = path.join(work, 'certs');
  staples = path.join(work, 'staples');
  await mkdir(certs);
  await mkdir(staples);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The command as a process, its state under `xdg` (default: the work directory's own). */
function cli(args: string[], xdg = path.join(work, 'state')) {
  return runToEnd(process.execPath, [DEV_BIN, ...args], {
    env: { ...process.env, XDG_STATE_HOME: xdg },
    timeoutMs: 30_000,
  });
}

const renewEmpty = (...more: string[]) => [
  'renew',
  '--certs',
  certs,
  '--staples',
  staples,
  '--allow-empty',
  ...more,
];

describe('renew: the lock and the state', () => {
  it('a state directory under a regular file: exit 1 naming the lock and its directory', async () => {
    const xdg = path.join(file, 'state');
    const lock = lockFileFor(staples, { XDG_STATE_HOME: xdg });
    const r = await cli(renewEmpty(), xdg);
    expect(r.stderr).toBe(
      `ocsp-renewer: cannot take the lock ${lock}: cannot create its directory ${path.dirname(lock)}: ` +
        `${NOT_A_DIRECTORY} (the lock lives under $XDG_STATE_HOME/ocsp-renewer, default ~/.local/state/ocsp-renewer)\n`,
    );
    expect(r.code).toBe(1);
  });

  it('a directory where the lock goes: exit 1 at once, not a wait that never ends', async () => {
    const xdg = path.join(work, 'state-lock-dir');
    const lock = lockFileFor(staples, { XDG_STATE_HOME: xdg });
    await mkdir(lock, { recursive: true });
    const r = await cli(renewEmpty('--lock-wait', '1'), xdg);
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe(
      `ocsp-renewer: cannot take the lock ${lock}: cannot read it: ${A_DIRECTORY} ` +
        '(the lock lives under $XDG_STATE_HOME/ocsp-renewer, default ~/.local/state/ocsp-renewer)\n',
    );
    expect(r.code).toBe(1);
  });

  it('--state under a regular file: the run goes on (exit 0) and says the state cannot be kept', async () => {
    const state = path.join(file, 'state.json');
    const r = await cli(renewEmpty('--state', state));
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(NODE_MESSAGE);
    expect(r.stderr).toContain(`ocsp-renewer: state unreadable; rebuilding (${state}): ${NOT_A_DIRECTORY}\n`);
    expect(r.stderr).toContain(`ocsp-renewer: cannot save state ${state}: ${NOT_A_DIRECTORY}\n`);
  });

  it("a state file that is not JSON: the run goes on and says so in words, not JSON.parse's", async () => {
    const state = path.join(work, 'corrupt-state.json');
    await writeFile(state, '{"version": 1, "certs": {');
    const r = await cli(renewEmpty('--state', state));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`ocsp-renewer: state corrupt; rebuilding (${state}): not JSON\n`);
    expect(r.stderr).not.toMatch(/Unexpected|position \d/);
  });

  it('--staples a regular file: exit 1 saying so once', async () => {
    const r = await cli(['renew', '--certs', certs, '--staples', file, '--allow-empty']);
    expect(r.stderr).toBe(`ocsp-renewer: renew --staples ${file}: not a directory\n`);
    expect(r.code).toBe(1);
  });
});

describe('status and inspect', () => {
  it('status --html naming a directory: exit 1, the path and "cannot write"', async () => {
    const html = path.join(work, 'html-dir');
    await mkdir(html);
    await writeFile(path.join(staples, 'x.ocsp'), 'not a staple');
    try {
      const r = await cli(['status', staples, '--state', 'none', '--html', html]);
      expect(r.stderr).toBe(`ocsp-renewer: status: cannot write ${html}: ${A_DIRECTORY}\n`);
      expect(r.code).toBe(1);
    } finally {
      await rm(path.join(staples, 'x.ocsp'));
    }
  });

  it('inspect of a path under a regular file, or of a symbolic link loop: exit 1, the path, plain words', async () => {
    const under = path.join(file, 'x.ocsp');
    const loop = path.join(work, 'loop.ocsp');
    await symlink(path.join(work, 'loop-b.ocsp'), loop);
    await symlink(loop, path.join(work, 'loop-b.ocsp'));
    for (const [staple, words] of [
      [under, NOT_A_DIRECTORY],
      [loop, 'too many levels of symbolic links'],
    ]) {
      const r = await cli(['inspect', staple!]);
      expect(r.stderr).toBe(`ocsp-renewer: read ${staple}: ${words}\n`);
      expect(r.code).toBe(1);
    }
  });
});

describe('the words for a file-system error', () => {
  it('real errors: the code in words; with fileErrorMessage, the path and what was being done', async () => {
    const caught = (p: Promise<unknown>) =>
      p.then(
        () => expect.fail('no error'),
        (err: unknown) => err,
      );
    const enotdir = await caught(mkdir(path.join(file, 'sub')));
    expect(errorMessage(enotdir)).toBe(NOT_A_DIRECTORY);
    expect(fileErrorMessage(enotdir)).toBe(
      `cannot create the directory ${path.join(file, 'sub')}: ${NOT_A_DIRECTORY}`,
    );
    const eisdir = await caught(readFile(work));
    expect(errorMessage(eisdir)).toBe(A_DIRECTORY);
    const enospc = await caught(writeFile('/dev/full', 'x'));
    expect(errorMessage(enospc)).toBe('no space left on the device');
    const enoent = await caught(readFile(path.join(work, 'missing')));
    expect(fileErrorMessage(enoent)).toBe(
      `cannot open ${path.join(work, 'missing')}: no such file or directory`,
    );
  });

  it('codes root cannot produce here, as Node reports them; anything else keeps its message', () => {
    const system = (code: string, syscall = 'open') =>
      Object.assign(new Error(`${code}: x, ${syscall} '/p'`), { code, syscall, path: '/p' });
    expect(errorMessage(system('EACCES'))).toBe('permission denied');
    expect(errorMessage(system('EPERM'))).toBe('operation not permitted');
    expect(errorMessage(system('EROFS'))).toBe('the file system is read-only');
    expect(errorMessage(system('EMFILE'))).toBe('too many open files in this process (see ulimit -n)');
    expect(fileErrorMessage(system('EACCES', 'scandir'))).toBe(
      'cannot list the directory /p: permission denied',
    );
    // Not a file-system error: its own message (a refused connection is the responder's story).
    expect(errorMessage(system('ECONNREFUSED', 'connect'))).toBe("ECONNREFUSED: x, connect '/p'");
    expect(fileErrorMessage(new Error('plain'))).toBe('plain');
  });
});
