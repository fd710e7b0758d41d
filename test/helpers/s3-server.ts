/**
 * A real S3 API on loopback for tests: s3rver, run as a child process.
 *
 * Why a child process: s3rver's continuation tokens use DES, which Node 17+ only has with
 * `--openssl-legacy-provider`; setting that flag for the whole test worker is not wanted, so only
 * the child gets it. The child also exits when its stdin closes, so a test worker killed outright
 * (SIGKILL) does not leave it behind; SIGTERM/SIGINT/SIGHUP and `exit` are hooked as in
 * ./openssl-responder.ts.
 *
 * s3rver quirks worth knowing: it ignores conditional PUTs (If-None-Match / If-Match), and it
 * checks SigV4 signatures against the fixed credentials S3RVER / S3RVER.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ListBucketsCommand, type S3Client } from '@aws-sdk/client-s3';
import { makeS3Client } from '../../lambda/adapters/s3.js';
import { track } from './processes.js';

export interface StartS3ServerOptions {
  /** Buckets created at startup (more can be created with CreateBucketCommand). */
  buckets: string[];
}

export interface S3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** AWS_* variables pointing the SDK (and makeS3Client) at this server with its credentials. */
  env: Record<string, string>;
  /** A new client for this server (path-style, checksums only when required). */
  client(): S3Client;
  /** Process id of the s3rver process. */
  pid: number;
  /** SIGTERM, SIGKILL after 2 s; resolves once the process has exited; removes its data. Idempotent. */
  stop(): Promise<void>;
}

/** Generous: on a loaded 2-core machine s3rver's start-up (a Node process, Koa) can take seconds. */
const READY_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 2_000;

/** Exit when the parent goes away (stdin is a pipe from it), however it went. */
const PARENT_WATCHDOG =
  'data:text/javascript,process.stdin.on("end",()=>process.exit(0)).on("error",()=>process.exit(0)).resume()';

/**
 * Keep idle connections for 2 minutes, as the dynalite helper does: clients keep them across slow
 * steps (a CDK synthesis, a map run's listing), and Node's 5 s default would close one under a
 * client just as it reuses it ("socket hang up"; the tests' clients do not retry, so counts stay
 * exact). Set on every server s3rver starts, before it listens.
 */
const KEEP_ALIVE_MS = 120_000;
const KEEP_ALIVE = `data:text/javascript,${encodeURIComponent(
  `import http from 'node:http';
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  this.keepAliveTimeout = ${KEEP_ALIVE_MS};
  return listen.apply(this, args);
};`,
)}`;

export async function startS3Server(options: StartS3ServerOptions): Promise<S3Server> {
  const require = createRequire(import.meta.url);
  const bin = join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
  const directory = await mkdtemp(join(tmpdir(), 'ocsp-renewer-s3rver-'));
  const args = [bin, '--directory', directory, '--port', '0', '--address', '127.0.0.1', '--silent'];
  for (const bucket of options.buckets) args.push('--configure-bucket', bucket);

  const child = spawn(process.execPath, ['--import', PARENT_WATCHDOG, '--import', KEEP_ALIVE, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_OPTIONS: [process.env.NODE_OPTIONS, '--openssl-legacy-provider'].filter(Boolean).join(' '),
    },
  });
  track(child);
  let output = '';
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-64 * 1024);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const exited = new Promise<void>((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res();
    else child.once('exit', () => res());
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      await rm(directory, { recursive: true, force: true });
    })());

  try {
    const port = await waitListening(
      child,
      () => output,
      () => spawnError,
    );
    const endpoint = `http://127.0.0.1:${port}`;
    const env = {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    };
    const client = () =>
      makeS3Client(env, {
        region: env.AWS_REGION,
        credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
        maxAttempts: 1,
      });
    await waitAnswering(client(), () => output);
    return { endpoint, env, client, pid: child.pid as number, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits for s3rver's "listening on 127.0.0.1:<port>" line (it binds port 0) and returns the port. */
async function waitListening(
  child: ChildProcess,
  output: () => string,
  spawnError: () => Error | undefined,
): Promise<number> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const err = spawnError();
    if (err) throw new Error(`could not run s3rver: ${err.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `s3rver exited early (code ${child.exitCode}, signal ${child.signalCode}): ${output().trim()}`,
      );
    }
    const match = /S3rver listening on [^\s:]+:(\d+)/.exec(output());
    if (match) return Number(match[1]);
    if (Date.now() > deadline) {
      throw new Error(`s3rver did not start after ${READY_TIMEOUT_MS} ms: ${output().trim()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Listening is not the same as serving: wait until ListBuckets succeeds. */
async function waitAnswering(client: S3Client, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  try {
    for (;;) {
      try {
        await client.send(new ListBucketsCommand({}));
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(
            `s3rver not answering ListBuckets after ${READY_TIMEOUT_MS} ms: ${String(err)} ${output().trim()}`,
            { cause: err },
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    client.destroy();
  }
}
