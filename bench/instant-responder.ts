/**
 * An instant OCSP responder on loopback for the benchmarks: answers GET (base64 request in the
 * path) and POST with a pre-signed response looked up by serial, with no signing work per request.
 * Optional `delayMs` holds each answer back, as a distant responder would.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/pki.js';
import { makeFleet, type Fleet } from './fleet.js';

export async function startInstantResponder(
  lookup: (requestDer: Buffer) => Buffer | undefined,
  port = 0,
  delayMs = 0,
): Promise<{ server: Server; url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      const body =
        req.method === 'POST'
          ? Buffer.concat(chunks)
          : Buffer.from(decodeURIComponent((req.url ?? '/').replace(/^.*\//, '')), 'base64');
      const der = lookup(body);
      const answer = () => {
        if (!der) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': der.length });
        res.end(der);
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return { server, url: `http://127.0.0.1:${bound}/`, requests: () => requests };
}

/** A responder child process (bench/instant-responder-process.ts) and how to stop it. */
export interface ResponderProcess {
  port: number;
  pid: number;
  /** SIGTERM; resolves with the requests it answered (its last line), once it has exited. */
  stop(): Promise<number>;
}

const READY_TIMEOUT_MS = 60_000;

/**
 * Starts the instant responder in its own process, answering for the `<serial hex>.der` files in
 * `responsesDir` on `port` (0: any free port), so its CPU and memory are not the caller's. Resolves
 * once it has printed its `listening <port>` line (it prints it from the listen callback); throws
 * after 60 s or if it exits first. It exits by itself when the caller's end of its stdin closes.
 */
async function spawnInstantResponder(responsesDir: string, port = 0, delayMs = 0): Promise<ResponderProcess> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'instant-responder-process.ts');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', script, responsesDir, String(port), String(delayMs)],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-8192)));
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-8192)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<number> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    return Number(/^requests (\d+)$/m.exec(output)?.[1] ?? NaN);
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const match = /^listening (\d+)$/m.exec(output);
    if (match) return { port: Number(match[1]), pid: child.pid!, stop };
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`instant responder exited before listening: ${output.trim()}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`instant responder not listening after ${READY_TIMEOUT_MS / 1000} s: ${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A synthetic fleet of `n` leaves (bench/fleet.ts) whose OCSP URL is an instant responder process
 * on a free loopback port: each response as `<dir>/responses/<serial hex>.der`, which that process
 * serves, and each leaf's bundle as `<dir>/certs/leaf-<i>.pem`. The set-up of the CLI and handler
 * rows of `npm run bench`.
 */
export async function serveFleet(
  dir: string,
  n: number,
): Promise<{ fleet: Fleet; certsDir: string; responder: ResponderProcess }> {
  const certsDir = path.join(dir, 'certs');
  const responsesDir = path.join(dir, 'responses');
  mkdirSync(responsesDir);
  mkdirSync(certsDir);
  const port = await freePort();
  const fleet = makeFleet(n, `http://127.0.0.1:${port}/`, new Date(), 3);
  fleet.leaves.forEach((leaf, i) => {
    writeFileSync(path.join(certsDir, `leaf-${i}.pem`), leaf.bundle);
    writeFileSync(path.join(responsesDir, `${leaf.serialHex}.der`), fleet.responses[i]!);
  });
  return { fleet, certsDir, responder: await spawnInstantResponder(responsesDir, port) };
}
