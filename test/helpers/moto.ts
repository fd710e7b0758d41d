/**
 * moto_server (moto 5, the Python AWS emulator) on loopback for tests, where it is installed. It
 * gives what s3rver does not: S3 that answers conditional PUTs (412/404) and keeps versions, S3
 * event notifications sent to SQS in AWS's event shape, and SQS itself (visibility timeouts,
 * receive counts, a redrive policy's dead-letter queue). It is not an npm package, so a test asks
 * `isMotoAvailable()` first and says what it leaves out when it is missing.
 *
 * Started as `moto_server -H 127.0.0.1 -p PORT` with MOTO_PORT=PORT (moto builds queue URLs from
 * it), on a free port; ready once it answers an HTTP request. Its state is in memory: stopping it
 * forgets everything. The process is tracked (./processes.ts), so it is killed when the test
 * worker ends, unless the worker is killed outright (SIGKILL).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { makeS3Client } from '../../lambda/adapters/s3.js';
import { freePort } from './pki.js';
import { track } from './processes.js';

export interface MotoServer {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** The account moto puts every resource in (ARNs, queue URLs). */
  account: string;
  region: string;
  /** A new S3 client for this server: path-style, checksums only when required, as makeS3Client. */
  s3(): S3Client;
  /** A new SQS client for this server. */
  sqs(): SQSClient;
  pid: number;
  /** How long it took to answer its first request, in ms. */
  startupMs: number;
  /** SIGTERM, SIGKILL after 2 s; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

/** A Python server on a loaded 2-core machine: give it a minute. */
const READY_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 2_000;
const REGION = 'us-east-1';
/** moto accepts any credentials; these say they are not real. */
const CREDENTIALS = { accessKeyId: 'moto-testing', secretAccessKey: 'moto-testing' };

let available: boolean | undefined;

/** Whether `moto_server` runs on this machine (on PATH and answering `-h`). Asked once. */
export function isMotoAvailable(): boolean {
  available ??= spawnSync('moto_server', ['-h'], { stdio: 'ignore', timeout: READY_TIMEOUT_MS }).status === 0;
  return available;
}

export async function startMoto(): Promise<MotoServer> {
  const port = await freePort();
  const started = Date.now();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MOTO_PORT: String(port) },
  });
  track(child);
  let output = '';
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-16 * 1024);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      await exited;
      clearTimeout(timer);
    })());

  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitAnswering(endpoint, () => {
      if (spawnError) throw new Error(`could not run moto_server: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `moto_server exited early (code ${child.exitCode}, signal ${child.signalCode}): ${output.trim()}`,
        );
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const startupMs = Date.now() - started;
  const s3 = () =>
    makeS3Client(
      { AWS_ENDPOINT_URL_S3: endpoint },
      { region: REGION, credentials: CREDENTIALS, maxAttempts: 1 },
    );
  const sqs = () => new SQSClient({ endpoint, region: REGION, credentials: CREDENTIALS, maxAttempts: 1 });
  return { endpoint, account: '123456789012', region: REGION, s3, sqs, pid: child.pid!, startupMs, stop };
}

/** Listening is not enough for a Python server that is still importing: wait for an answer. */
async function waitAnswering(endpoint: string, checkAlive: () => void): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    checkAlive();
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`moto_server not answering ${endpoint} after ${READY_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
