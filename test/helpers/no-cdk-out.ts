/**
 * vitest globalSetup: the suite runs with a temp directory of its own (TMPDIR, which the test
 * workers and every process they start inherit, and os.tmpdir() reads), so that the run fails
 * when it leaves a `cdk.out*` directory there (a CDK App made without `outdir`;
 * test/helpers/cdk-app.ts makes them with one), whatever other processes do in the system's. The
 * directory is removed at the end.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const outer = process.env.TMPDIR;
  const dir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-tests-'));
  chmodSync(dir, 0o1777); // as /tmp: peers started under other users (Exim) reach their directories
  process.env.TMPDIR = dir;
  return () => {
    if (outer === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = outer;
    const left = readdirSync(dir).filter((name) => name.startsWith('cdk.out'));
    rmSync(dir, { recursive: true, force: true });
    if (left.length) {
      // vitest reports an error thrown here but keeps its exit code: set it.
      process.exitCode = 1;
      throw new Error(
        `the tests left ${left.length} CDK output director${left.length === 1 ? 'y' : 'ies'} (cdk.out*) in the temp directory: make Apps with test/helpers/cdk-app.ts`,
      );
    }
  };
}
