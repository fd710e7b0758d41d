/**
 * The benchmarks' child processes, each measured on its own: running one to its end, and the two
 * children whose runs the bench times, bench/forced-cli-run.ts (a forced CLI run) and
 * bench/handler-run.ts (the Lambda handler, forced then scheduled), with their results checked.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runs `command <args>` in the repository to its end: its stdout, or an error naming `what` with its stderr. */
async function childOutput(
  what: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-1024 * 1024)));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-64 * 1024)));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const last = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0) throw new Error(`${what} exited ${code}: ${stderr.trim() || last}`);
  return stdout;
}

/** The JSON of a child's last stdout line (after a `BENCH ` marker when it has one). */
export async function childJson<T>(
  what: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<T> {
  const last = (await childOutput(what, command, args, env)).trim().split('\n').pop() ?? '';
  return JSON.parse(last.replace(/^BENCH /, '')) as T;
}

/** What bench/forced-cli-run.ts prints: see there. */
export interface ForcedCliResult {
  seconds: number;
  counts: Record<string, number>;
  mainThreadCpuS?: number;
}

/**
 * One forced CLI run over `certs` (N leaves, all renewed or it throws) in a child under tsx, with
 * its own staples directory and state file, and this environment (NODE_OPTIONS included).
 */
export async function forcedCliRun(
  what: string,
  dirs: { certs: string; staples: string; state: string },
  n: number,
  env: NodeJS.ProcessEnv,
): Promise<ForcedCliResult> {
  const script = path.join(root, 'bench', 'forced-cli-run.ts');
  const result = await childJson<ForcedCliResult>(
    what,
    process.execPath,
    ['--import', 'tsx', script, dirs.certs, dirs.staples, dirs.state],
    env,
  );
  if (result.counts?.renewed !== n) throw new Error(`${what}: ${JSON.stringify(result.counts)}`);
  return result;
}

/** One handler invocation as bench/handler-run.ts reports it. */
export interface HandlerInvocation {
  seconds: number;
  counts: Record<string, number>;
  /** A scheduled run: how many certificates the due index returned. */
  due?: number;
}

/** What bench/handler-run.ts prints: the forced and the scheduled invocation. */
export interface HandlerRunResult {
  forced: HandlerInvocation;
  quiet: HandlerInvocation;
}

/**
 * bench/handler-run.ts as `command <args>` (however it is started: see handler-bundle.ts); throws
 * unless the forced invocation renewed all `n` certificates and the scheduled one found none due.
 */
export async function handlerRun(
  what: string,
  command: string,
  args: string[],
  n: number,
  env: NodeJS.ProcessEnv,
): Promise<HandlerRunResult> {
  const result = await childJson<HandlerRunResult>(what, command, args, env);
  if (result.forced.counts.renewed !== n || result.quiet.due !== 0) {
    throw new Error(`${what}: ${JSON.stringify([result.forced.counts, result.quiet.counts])}`);
  }
  return result;
}
