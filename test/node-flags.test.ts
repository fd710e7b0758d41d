/**
 * The two places that start node with a young-generation cap, run for real under every POSIX shell
 * here (dash, BusyBox sh, bash), with V8's own answer as the check: `heap_size_limit` is the old
 * generation's limit plus three semi-spaces, so it tells which `--max-semi-space-size` took effect.
 *
 * - The `ocsp-renewer` command's launcher: the first two lines of lambda/cli/bin.ts (tsc copies
 *   them unchanged into dist/cli/bin.js; test/cli.pack.test.ts runs the installed command), put in
 *   front of a probe script.
 * - The Lambda's exec wrapper, lambda/aws/exec-wrapper.sh, given the command line the Node.js
 *   runtime's bootstrap builds for the stack's memory size.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MEMORY_MB } from '../infra/renewer-function.js';
import { REPO_ROOT, start } from './helpers/cli-process.js';
import { lambdaRuntimeNodeArgs } from './helpers/lambda-runtime.js';
import { SHELLS } from './helpers/shells.js';

const LAUNCHER = readFileSync(path.join(REPO_ROOT, 'lambda/cli/bin.ts'), 'utf8').split('\n').slice(0, 2);
const WRAPPER = path.join(REPO_ROOT, 'lambda/aws/exec-wrapper.sh');

interface Probe {
  pid: number;
  execArgv: string[];
  argv: string[];
  nodeOptions: string | null;
  limit: number;
  sibling: string;
}

/** What V8 reports as heap_size_limit for `node <flags>` (the node on PATH, as the launcher runs). */
function heapLimit(flags: string[], env: NodeJS.ProcessEnv = {}): number {
  const out = execFileSync(
    'node',
    [...flags, '-p', "require('node:v8').getHeapStatistics().heap_size_limit"],
    {
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      encoding: 'utf8',
    },
  );
  return Number(out.trim());
}

/** Runs a command to its end (cli-process.ts `start`); its pid, exit code and the probe's JSON line. */
async function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const running = start(command, args, { env: { ...process.env, NODE_OPTIONS: '', ...env } });
  const { code, stdout, stderr } = await running.exited;
  const line = stdout.trim().split('\n').pop() ?? '';
  return {
    pid: running.child.pid,
    code,
    stderr,
    probe: (line ? JSON.parse(line) : undefined) as Probe | undefined,
  };
}

let dir: string;
let probeBody: string;
beforeAll(() => {
  // A directory name with a space: the arguments must come through whole.
  dir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer node-flags-'));
  writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
  writeFileSync(path.join(dir, 'sibling.js'), "export const sibling = 'loaded beside the script';\n");
  probeBody = [
    "import v8 from 'node:v8';",
    "import { sibling } from './sibling.js';",
    'console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, argv: process.argv.slice(2),',
    '  nodeOptions: process.env.NODE_OPTIONS ?? null, limit: v8.getHeapStatistics().heap_size_limit, sibling }));',
    'process.exitCode = Number(process.env.PROBE_EXIT ?? 0);',
  ].join('\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the ocsp-renewer launcher (lambda/cli/bin.ts, first two lines)', () => {
  let script: string;
  beforeAll(() => {
    script = path.join(dir, 'launcher.js');
    writeFileSync(script, `${LAUNCHER.join('\n')}\n${probeBody}\n`);
    chmodSync(script, 0o755);
  });

  it('is a /bin/sh script whose exec line is a JavaScript comment', () => {
    expect(LAUNCHER[0]).toBe('#!/bin/sh');
    expect(LAUNCHER[1]).toMatch(/^\/\/.*exec node "\$0" "\$@"$/);
  });

  it('run directly (the kernel reads #!/bin/sh): node in the same process, 16 MB semi-spaces, arguments whole', async () => {
    const res = await run(script, ['renew', 'a b', '']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.probe!.pid).toBe(res.pid); // exec: no shell left waiting, signals reach node
    expect(res.probe!.argv).toEqual(['renew', 'a b', '']);
    expect(res.probe!.limit).toBe(heapLimit(['--max-semi-space-size=16']));
    expect(res.probe!.limit).not.toBe(heapLimit(['--max-semi-space-size=64']));
    expect(res.probe!.sibling).toBe('loaded beside the script');
  });

  it('through a symlink, as npm links a bin into node_modules/.bin: imports resolve beside the real file', async () => {
    const link = path.join(dir, 'ocsp-renewer');
    symlinkSync(script, link);
    const res = await run(link, ['--version']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.probe).toMatchObject({ argv: ['--version'], sibling: 'loaded beside the script' });
    expect(res.probe!.limit).toBe(heapLimit(['--max-semi-space-size=16']));
  });

  it('passes the exit code through', async () => {
    const res = await run(script, [], { PROBE_EXIT: '3' });
    expect(res.code).toBe(3);
  });

  for (const { name, argv: command, available } of SHELLS) {
    it.skipIf(!available)(
      `under ${name}: the same flag, and the caller's NODE_OPTIONS kept after it`,
      async () => {
        const plain = await run(command[0]!, [...command.slice(1), script, 'x']);
        expect(plain.code, plain.stderr).toBe(0);
        expect(plain.probe!.limit).toBe(heapLimit(['--max-semi-space-size=16']));
        expect(plain.probe!.nodeOptions!.trim()).toBe('--max-semi-space-size=16');

        const own = await run(command[0]!, [...command.slice(1), script], {
          NODE_OPTIONS: '--max-semi-space-size=64 --max-http-header-size=32768',
        });
        expect(own.code, own.stderr).toBe(0);
        // The caller's own cap comes later in NODE_OPTIONS, and V8 takes the last one.
        expect(own.probe!.nodeOptions).toBe(
          '--max-semi-space-size=16 --max-semi-space-size=64 --max-http-header-size=32768',
        );
        expect(own.probe!.limit).toBe(heapLimit(['--max-semi-space-size=64']));
      },
    );
  }

  it('is a comment to node: `node dist/cli/bin.js` runs with no flag added', async () => {
    const res = await run('node', [script, 'y']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.probe).toMatchObject({ argv: ['y'], nodeOptions: '' });
    expect(res.probe!.limit).toBe(heapLimit([]));
  });
});

describe('the Lambda exec wrapper (lambda/aws/exec-wrapper.sh)', () => {
  let entry: string;
  let runtimeArgs: string[];
  beforeAll(() => {
    entry = path.join(dir, 'index.mjs');
    writeFileSync(entry, `${probeBody}\n`);
    runtimeArgs = lambdaRuntimeNodeArgs(DEFAULT_MEMORY_MB);
  });

  it('is committed executable (git mode 100755), as Lambda runs it as a program', () => {
    const staged = execFileSync('git', ['ls-files', '-s', 'lambda/aws/exec-wrapper.sh'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(staged.split(' ')[0]).toBe('100755');
  });

  for (const { name, argv: command, available } of SHELLS) {
    it.skipIf(!available)(
      `under ${name}: adds --max-semi-space-size=16 after the runtime's flags, before its entry script`,
      async () => {
        const node = execFileSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).trim();
        const res = await run(command[0]!, [...command.slice(1), WRAPPER, node, ...runtimeArgs, entry], {
          NODE_OPTIONS: '--enable-source-maps',
        });
        expect(res.code, res.stderr).toBe(0);
        expect(res.probe!.execArgv).toEqual([...runtimeArgs, '--max-semi-space-size=16']);
        expect(res.probe!.nodeOptions).toBe('--enable-source-maps');
        expect(res.probe!.sibling).toBe('loaded beside the script');
        const oldSpace = runtimeArgs.find((a) => a.startsWith('--max-old-space-size='))!;
        // The runtime's own cap (51 for 1024 MB) lost to the wrapper's.
        expect(res.probe!.limit).toBe(heapLimit([oldSpace, '--max-semi-space-size=16']));
        expect(res.probe!.limit).not.toBe(heapLimit(runtimeArgs));
      },
    );
  }

  it('execs: node is the process the runtime started, with its exit code', async () => {
    const node = execFileSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).trim();
    const res = await run(WRAPPER, [node, ...runtimeArgs, entry], { PROBE_EXIT: '4' });
    expect(res.code).toBe(4);
    expect(res.probe!.pid).toBe(res.pid);
  });

  it('with fewer than two arguments runs the command as given', async () => {
    const res = await run(WRAPPER, ['true']);
    expect(res.code).toBe(0);
    const bare = await run(WRAPPER, ['false']);
    expect(bare.code).toBe(1);
  });
});
