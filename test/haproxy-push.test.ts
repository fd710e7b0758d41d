import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'host', 'haproxy-ocsp-push.sh');
let dest: string;

beforeAll(async () => {
  dest = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-haproxy-push-'));
  await writeFile(path.join(dest, 'ok.ocsp'), 'x');
});
afterAll(async () => {
  await rm(dest, { recursive: true, force: true });
});

describe('host/haproxy-ocsp-push.sh', () => {
  it('should refuse names in OCSP_INSTALLED that would leave OCSP_DEST, and push only the others', async () => {
    const { stderr } = await new Promise<{ stderr: string }>((resolve) => {
      execFile(
        'sh',
        [script, path.join(dest, 'no-such.sock')],
        {
          env: {
            PATH: process.env.PATH,
            OCSP_DEST: dest,
            OCSP_INSTALLED: '../etc/passwd\nok.ocsp\n/abs.ocsp\na/./b.ocsp',
          },
        },
        (_err, _stdout, stderr) => resolve({ stderr }),
      );
    });
    expect(stderr).toContain('refuse ../etc/passwd: not a plain name under OCSP_DEST');
    expect(stderr).toContain('refuse /abs.ocsp: not a plain name under OCSP_DEST');
    expect(stderr).toContain('refuse a/./b.ocsp: not a plain name under OCSP_DEST');
    expect(stderr).not.toContain('refuse ok.ocsp');
  });
});
