/**
 * Child processes of the test helpers (responders, S3 servers, TLS servers), killed even when a
 * test forgets to stop them. A plain process 'exit' hook is not enough under vitest: its fork
 * pool ends workers with SIGTERM (SIGKILL 500 ms later), and a signal's default action skips
 * 'exit' handlers. So termination signals are hooked too: kill the children, then re-raise the
 * signal if nobody else handles it (keeping its default behaviour).
 */
import { spawn, type ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAll();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** Kills `child` when the test process ends, however it ends. */
export function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, onSignal);
}

/** `openssl s_client …` with stdin closed, so it exits after the handshake; 10 s at most. */
export function sClient(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    track(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    child.stdin.end();
  });
}

/**
 * The `openssl s_server` arguments that serve `leaf` with its chain on 127.0.0.1:`port` and staple
 * the DER OCSP response in `staple` (the recipe's "a TLS server staples it").
 */
export function sServerArgs(opts: {
  port: number;
  leaf: { cert: string; key: string };
  chain: string;
  staple: string;
}): string[] {
  return [
    's_server',
    '-accept',
    `127.0.0.1:${opts.port}`,
    '-cert',
    opts.leaf.cert,
    '-key',
    opts.leaf.key,
    '-cert_chain',
    opts.chain,
    '-status_file',
    opts.staple,
  ];
}
