/**
 * `npm run bench:side-by-side -- [--n 1000] [--delay-ms 50] [--runs 3] [--compare <git ref>]
 *  [--concurrency <n>] [--per-host <n>]`
 *
 * The real CLI, end to end, against a real responder: a test PKI (test/helpers/pki.ts) plus N
 * distinct leaves issued by its intermediate (bench/fleet.ts, listed in the CA's index.txt), a
 * local `openssl ocsp -multi 4` signing with the delegated signer, behind a loopback latency proxy
 * that holds every response back --delay-ms. For each checkout it times
 *   forced: `node lambda/cli/ocsp-renewer.js renew --certs … --staples … --state … --force`
 *           from an empty staples directory and no state;
 *   quiet:  the same command without --force right after (nothing due);
 * wall time from spawn to exit, peak RSS from `/usr/bin/time -v` (else from the child's own
 * VmHWM through an --import hook), both under the caller's NODE_OPTIONS. With --compare, the same scenario runs
 * with that ref (a `git archive` of it in a temp dir, node_modules symlinked to this checkout's),
 * interleaved (this, ref, this, ref, …) so both see the same machine load; each figure is the
 * median of --runs runs.
 *
 * Issue 11's latency goal: forced wall ≤ 1.5 × (N × delay ÷ in flight) + start-up, where in flight
 * is the CLI's own limit (the smaller of --concurrency and the per-host limit, both at the CLI's
 * defaults from lambda/renew/settings.ts unless --concurrency is given: every leaf names one
 * responder host) and start-up is the wall time of the same command over an empty directory
 * (Node, tsx, the CLI's imports, one empty run), median of --runs. Printed next to each forced wall.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { request, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SETTINGS } from '../lambda/renew/settings.js';
import { freePort, makeTestPki } from '../test/helpers/pki.js';
import { makeLeavesUnder } from './fleet.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    'delay-ms': { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
    compare: { type: 'string' },
    concurrency: { type: 'string' },
    'per-host': { type: 'string' },
  },
});
const N = Number(values.n);
const delayMs = Number(values['delay-ms']);
const runs = Number(values.runs);
if (!(N > 0 && delayMs >= 0 && runs > 0)) throw new Error('--n, --delay-ms and --runs must be numbers');
const READY_TIMEOUT_MS = 60_000;

const work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-side-by-side-'));
const children: ChildProcess[] = [];
let proxy: ReturnType<typeof createServer> | undefined;
try {
  // --- PKI, N leaves, the responder and the proxy ------------------------------------------------
  const proxyPort = await freePort();
  const responderPort = await freePort();
  const pki = await makeTestPki({ dir: path.join(work, 'pki'), ocspUrl: `http://127.0.0.1:${proxyPort}/` });
  const intermediatePem = await readFile(pki.intermediate.cert, 'utf8');
  const { leaves, indexLines } = makeLeavesUnder(N, pki.ocspUrl, {
    pem: intermediatePem,
    privateKey: createPrivateKey(await readFile(pki.intermediate.key)),
  });
  await appendFile(pki.index, indexLines);
  const certsDir = path.join(work, 'certs');
  await mkdir(certsDir);
  await Promise.all(leaves.map((l, i) => writeFile(path.join(certsDir, `leaf-${i}.pem`), l.bundle)));

  const responder = spawn(
    'openssl',
    [
      'ocsp',
      '-index',
      pki.index,
      '-port',
      String(responderPort),
      '-CA',
      pki.intermediate.cert,
      '-rsigner',
      pki.signer.cert,
      '-rkey',
      pki.signer.key,
      '-ndays',
      '7',
      '-multi',
      '4',
      '-ignore_err',
      '-timeout',
      '5',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(responder);
  let responderLog = '';
  responder.stderr?.on('data', (d: Buffer) => (responderLog = (responderLog + d.toString()).slice(-8192)));
  await waitListening(responderPort, responder, () => responderLog);

  // The latency proxy: holds each request back delayMs, then forwards it to openssl ocsp.
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      setTimeout(() => {
        const upstream = request(
          {
            host: '127.0.0.1',
            port: responderPort,
            method: req.method,
            path: req.url,
            headers: { ...req.headers, host: `127.0.0.1:${responderPort}` },
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on('error', () => res.writeHead(502).end());
        upstream.end(Buffer.concat(chunks));
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => proxy!.listen(proxyPort, '127.0.0.1', resolve));

  // --- checkouts ----------------------------------------------------------------------------------
  const checkouts: Array<{ label: string; dir: string }> = [{ label: currentLabel(), dir: root }];
  if (values.compare) {
    const dir = path.join(work, 'compare');
    await mkdir(dir);
    const archive = spawnSync('sh', [
      '-c',
      `git -C "$1" archive "$2" | tar -x -C "$3"`,
      'sh',
      root,
      values.compare,
      dir,
    ]);
    if (archive.status !== 0) throw new Error(`git archive ${values.compare}: ${archive.stderr.toString()}`);
    await symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    checkouts.push({ label: `${values.compare} (${revParse(values.compare)})`, dir });
  }

  const emptyDir = path.join(work, 'empty');
  await mkdir(emptyDir);
  const results = new Map<string, { forced: Sample[]; quiet: Sample[]; startup: Sample[] }>();
  for (const c of checkouts) results.set(c.label, { forced: [], quiet: [], startup: [] });
  for (let r = 0; r < runs; r++) {
    for (const c of checkouts) {
      const staples = path.join(work, `staples-${checkouts.indexOf(c)}`);
      const state = path.join(work, `state-${checkouts.indexOf(c)}.json`);
      await rm(staples, { recursive: true, force: true });
      await rm(state, { force: true });
      await mkdir(staples);
      const args = ['renew', '--certs', certsDir, '--staples', staples, '--state', state, '--json'];
      if (values.concurrency) args.push('--concurrency', values.concurrency);
      if (values['per-host']) args.push('--per-host-concurrency', values['per-host']);
      const forced = await runCli(c.dir, [...args, '--force', '--allow-private-responders'], 'renewed');
      const quiet = await runCli(c.dir, [...args, '--allow-private-responders'], 'fresh');
      const emptyArgs = [
        'renew',
        '--certs',
        emptyDir,
        '--state',
        path.join(work, 'state-empty.json'),
        '--json',
      ];
      const startup = await runCli(c.dir, [...emptyArgs, '--force'], 'renewed', 0);
      results.get(c.label)!.forced.push(forced);
      results.get(c.label)!.quiet.push(quiet);
      results.get(c.label)!.startup.push(startup);
      console.error(
        `run ${r + 1}/${runs} ${c.label}: forced ${forced.seconds.toFixed(2)} s ${forced.rssMB.toFixed(0)} MB, ` +
          `quiet ${quiet.seconds.toFixed(2)} s ${quiet.rssMB.toFixed(0)} MB, start-up ${startup.seconds.toFixed(2)} s`,
      );
    }
  }

  console.log(
    `\nside by side: N = ${N}, +${delayMs} ms per response, openssl ocsp -multi 4, ` +
      `median of ${runs}, Node ${process.version}, ${new Date().toISOString()}\n`,
  );
  const inFlight = Math.min(
    values.concurrency ? Number(values.concurrency) : SETTINGS.concurrency.fallback,
    values['per-host'] ? Number(values['per-host']) : SETTINGS.perHostConcurrency.fallback,
  );
  const ideal = (N * delayMs) / inFlight / 1000;
  console.log(
    '| checkout | forced: wall | goal: ≤ 1.5 × (N × delay ÷ in flight) + start-up | forced: peak RSS | quiet: wall | quiet: peak RSS |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const [label, { forced, quiet, startup }] of results) {
    const wall = median(forced.map((s) => s.seconds));
    const startupSeconds = median(startup.map((s) => s.seconds));
    const bound = 1.5 * ideal + startupSeconds;
    console.log(
      `| ${label} | ${wall.toFixed(2)} s | ${wall <= bound ? 'ok' : 'MISSED'}: ≤ 1.5 × ${ideal.toFixed(2)} s + ` +
        `${startupSeconds.toFixed(2)} s = ${bound.toFixed(2)} s | ` +
        `${median(forced.map((s) => s.rssMB)).toFixed(0)} MB | ` +
        `${median(quiet.map((s) => s.seconds)).toFixed(2)} s | ${median(quiet.map((s) => s.rssMB)).toFixed(0)} MB |`,
    );
  }
  console.log(
    `\nin flight: ${inFlight} (the smaller of the CLI's concurrency, ${values.concurrency ?? `default ${SETTINGS.concurrency.fallback}`}, ` +
      `and its per-host limit, ${values['per-host'] ?? `default ${SETTINGS.perHostConcurrency.fallback}`}); ideal N × delay ÷ in flight = ` +
      `${ideal.toFixed(2)} s; start-up = the same command over an empty directory`,
  );
} finally {
  proxy?.close();
  for (const child of children) await stopResponder(child);
  await rm(work, { recursive: true, force: true });
}

interface Sample {
  seconds: number;
  rssMB: number;
}

/** Runs the checkout's CLI once; checks that `count` certificates (default N) ended `expect`. */
async function runCli(dir: string, args: string[], expect: 'renewed' | 'fresh', count = N): Promise<Sample> {
  const entry = path.join(dir, 'lambda', 'cli', 'ocsp-renewer.js');
  if (!existsSync(entry)) throw new Error(`${dir} has no lambda/cli/ocsp-renewer.js`);
  const useTime = existsSync('/usr/bin/time');
  // Without GNU time: an --import hook prints the child's own peak RSS to stderr as it exits:
  // VmHWM, since Linux carries getrusage's maxRSS across exec (it would count this process's pages).
  const rssHook =
    "data:text/javascript,import{readFileSync}from'node:fs';process.on('exit',()=>{let k;" +
    "try{const m=/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status','utf8'));k=m&&m[1]}catch{}" +
    "process.stderr.write('MAXRSS_KB '+(k||process.resourceUsage().maxRSS)+'\\n')})";
  const command = useTime ? '/usr/bin/time' : process.execPath;
  const commandArgs = useTime
    ? ['-v', process.execPath, entry, ...args]
    : ['--import', rssHook, entry, ...args];
  const start = process.hrtime.bigint();
  const child = spawn(command, commandArgs, {
    cwd: dir,
    env: { ...process.env, OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rssKb = Number(
    (useTime ? /Maximum resident set size \(kbytes\): (\d+)/ : /MAXRSS_KB (\d+)/).exec(stderr)?.[1] ?? NaN,
  );
  let counts: Record<string, number> = {};
  try {
    counts = (JSON.parse(stdout) as { counts: Record<string, number> }).counts;
  } catch {
    throw new Error(`ocsp-renewer ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`);
  }
  if (counts[expect] !== count) {
    throw new Error(
      `ocsp-renewer ${args.join(' ')}: expected ${count} ${expect}, got ${JSON.stringify(counts)}`,
    );
  }
  return { seconds, rssMB: rssKb / 1024 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function revParse(ref: string): string {
  return spawnSync('git', ['-C', root, 'rev-parse', '--short', ref], { encoding: 'utf8' }).stdout.trim();
}

function currentLabel(): string {
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain'], { encoding: 'utf8' }).stdout.trim();
  return `this checkout (${revParse('HEAD')}${dirty ? ', modified' : ''})`;
}

/** Waits until `port` is listening (ss -ltn), never connecting to it: see the BRIEF's pitfalls. */
async function waitListening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`openssl ocsp exited early: ${log()}`);
    const ss = spawnSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
    if (ss.stdout.trim()) return;
    if (Date.now() > deadline) throw new Error(`openssl ocsp not listening on ${port} after 60 s: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `openssl ocsp -multi`: its parent may ignore SIGTERM, so kill its children first, then it. */
async function stopResponder(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null) return;
  const kids = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
  for (const pid of kids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
