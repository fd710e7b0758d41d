/**
 * The HTTP transport (fetchOcspResponse, httpTransport, httpRequest's guard, deadline and body cap)
 * against a loopback fake responder: one server per test, stopped in `finally`, as got's
 * with-server does. Never aimed at `openssl ocsp`, which spins on aborted connections.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type default as http } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsCertificateSource, FsStapleStore } from '../lambda/adapters/filesystem.js';
import { DEFAULT_HTTP, HttpError, type HttpOptions } from '../lambda/adapters/http.js';
import { fetchOcspResponse, getUrlFor } from '../lambda/adapters/ocsp-fetch.js';
import { ALLOW_PRIVATE_ENV, ForbiddenAddressError } from '../lambda/adapters/ssrf-guard.js';
import { httpTransport } from '../lambda/adapters/transport.js';
import { parseCertificates } from '../lambda/core/certificate.js';
import { DeadlineError } from '../lambda/core/errors.js';
import { buildOcspRequest, certIdFor } from '../lambda/core/ocsp-request.js';
import { run } from '../lambda/renew/run.js';
import {
  buildOcspResponse,
  loadSigner,
  startFakeResponder,
  type FakeHandler,
  type FakeResponder,
} from './helpers/fake-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';

const LOOPBACK: HttpOptions = { ...DEFAULT_HTTP, allowPrivate: true };
/** Not a real OCSPRequest; its base64 holds '+', '/' and '=' so the URL encoding shows. */
const REQUEST = Buffer.from('30fbef3ffbff', 'hex');
const BODY = Buffer.from('a DER OCSP response would be here');

async function withFake<T>(handler: FakeHandler, fn: (fake: FakeResponder) => Promise<T>): Promise<T> {
  const fake = await startFakeResponder(handler);
  try {
    return await fn(fake);
  } finally {
    await fake.stop();
  }
}

const methods = (fake: FakeResponder) => fake.requests.map((r) => r.method);

/** A responder URL on the fake whose GET URL for REQUEST is exactly `length` bytes long. */
function urlWithGetLength(fake: FakeResponder, length: number): string {
  const shortest = getUrlFor(`${fake.url}p`, REQUEST).length;
  const url = `${fake.url}${'p'.repeat(1 + length - shortest)}`;
  expect(getUrlFor(url, REQUEST)).toHaveLength(length);
  return url;
}

describe('fetchOcspResponse: method', () => {
  it('should GET {url}/{url-encoded base64} for a short URL', async () => {
    await withFake(
      () => ({ body: BODY }),
      async (fake) => {
        const res = await fetchOcspResponse(fake.url, REQUEST, LOOPBACK);
        expect(res).toMatchObject({ method: 'GET', url: fake.url, der: BODY });
        expect(REQUEST.toString('base64')).toMatch(/[+/=]/);
        expect(fake.requests).toEqual([
          {
            method: 'GET',
            url: `/${encodeURIComponent(REQUEST.toString('base64'))}`,
            contentType: undefined,
          },
        ]);
        expect(fake.requests[0]!.url.slice(1)).not.toMatch(/[+/=]/);
      },
    );
  });

  it('should not double the slash when the URL has a path without one', async () => {
    let seen: Buffer | undefined;
    await withFake(
      (req) => {
        seen = req.requestDer;
        return { body: BODY };
      },
      async (fake) => {
        await fetchOcspResponse(`${fake.url}ocsp`, REQUEST, LOOPBACK);
        expect(fake.requests[0]!.url).toBe(`/ocsp/${encodeURIComponent(REQUEST.toString('base64'))}`);
        expect(seen).toEqual(REQUEST);
      },
    );
  });

  it('should GET when the GET URL is exactly 255 bytes', async () => {
    await withFake(
      () => ({ body: BODY }),
      async (fake) => {
        const res = await fetchOcspResponse(urlWithGetLength(fake, 255), REQUEST, LOOPBACK);
        expect(res.method).toBe('GET');
        expect(methods(fake)).toEqual(['GET']);
      },
    );
  });

  it('should POST application/ocsp-request when the GET URL would be 256 bytes', async () => {
    let body: Buffer | undefined;
    await withFake(
      (req) => {
        body = req.body;
        return { body: BODY };
      },
      async (fake) => {
        const url = urlWithGetLength(fake, 256);
        const res = await fetchOcspResponse(url, REQUEST, LOOPBACK);
        expect(res).toMatchObject({ method: 'POST', der: BODY });
        expect(fake.requests).toEqual([
          { method: 'POST', url: new URL(url).pathname, contentType: 'application/ocsp-request' },
        ]);
        expect(body).toEqual(REQUEST);
      },
    );
  });

  it('should POST for a long URL (path of 300 characters)', async () => {
    await withFake(
      () => ({ body: BODY }),
      async (fake) => {
        const url = `${fake.url}${'a'.repeat(300)}`;
        const res = await fetchOcspResponse(url, REQUEST, LOOPBACK);
        expect(res.method).toBe('POST');
        expect(fake.requests).toEqual([
          { method: 'POST', url: `/${'a'.repeat(300)}`, contentType: 'application/ocsp-request' },
        ]);
      },
    );
  });
});

describe('fetchOcspResponse: HTTP status', () => {
  it('should retry a GET answered 503 once by POST, and succeed', async () => {
    await withFake(
      (req) => (req.method === 'GET' ? { status: 503, body: 'busy' } : { body: BODY }),
      async (fake) => {
        const res = await fetchOcspResponse(fake.url, REQUEST, LOOPBACK);
        expect(res).toMatchObject({ method: 'POST', der: BODY });
        expect(fake.requests.map((r) => [r.method, r.contentType])).toEqual([
          ['GET', undefined],
          ['POST', 'application/ocsp-request'],
        ]);
      },
    );
  });

  it('should fail with HTTP 404 when GET and POST both get 404', async () => {
    await withFake(
      () => ({ status: 404, body: 'not here' }),
      async (fake) => {
        await expect(fetchOcspResponse(fake.url, REQUEST, LOOPBACK)).rejects.toThrow(/HTTP 404/);
        expect(methods(fake)).toEqual(['GET', 'POST']);
      },
    );
  });

  it('should fail on a 302 to GET and not follow it', async () => {
    await withFake(
      (req) =>
        req.path === '/elsewhere'
          ? { body: BODY }
          : { status: 302, headers: { location: '/elsewhere' }, body: '' },
      async (fake) => {
        await expect(fetchOcspResponse(fake.url, REQUEST, LOOPBACK)).rejects.toThrow(/HTTP 302/);
        expect(fake.requests.map((r) => r.url)).not.toContain('/elsewhere');
        expect(methods(fake)).toEqual(['GET']);
      },
    );
  });

  it('should fail on a 302 to POST and not follow it', async () => {
    await withFake(
      (req) =>
        req.path === '/elsewhere'
          ? { body: BODY }
          : { status: 302, headers: { location: '/elsewhere' }, body: '' },
      async (fake) => {
        const url = `${fake.url}${'a'.repeat(300)}`;
        await expect(fetchOcspResponse(url, REQUEST, LOOPBACK)).rejects.toThrow(/HTTP 302/);
        expect(fake.requests.map((r) => r.url)).not.toContain('/elsewhere');
        expect(methods(fake)).toEqual(['POST']);
      },
    );
  });
});

describe('httpTransport: body cap, deadline, max-age', () => {
  it('should refuse a body over the 64 KiB default cap', async () => {
    await withFake(
      () => ({ body: Buffer.alloc(64 * 1024 + 1, 0x30) }),
      async (fake) => {
        await expect(httpTransport(LOOPBACK)(fake.url, REQUEST)).rejects.toThrow(/exceeds 65536 bytes/);
      },
    );
  });

  it('should accept a body of exactly the cap', async () => {
    await withFake(
      () => ({ body: Buffer.alloc(64 * 1024, 0x30) }),
      async (fake) => {
        const res = await httpTransport(LOOPBACK)(fake.url, REQUEST);
        expect(res.der).toHaveLength(64 * 1024);
      },
    );
  });

  // Regression: a body over the cap that arrived whole resolved as an empty 200 (destroy() dumps it).
  it('should honour a small maxBytes option, even for a body that arrives in one piece', async () => {
    await withFake(
      (req) => ({ body: Buffer.alloc(req.path.includes('small') ? 100 : 101, 0x30) }),
      async (fake) => {
        const transport = httpTransport({ ...LOOPBACK, maxBytes: 100 });
        await expect(transport(`${fake.url}small`, REQUEST)).resolves.toMatchObject({
          der: Buffer.alloc(100, 0x30),
        });
        await expect(transport(`${fake.url}big`, REQUEST)).rejects.toThrow(/exceeds 100 bytes/);
      },
    );
  });

  it('should time out a body that stalls after the headers', async () => {
    await withFake(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': '1000' });
        res.write(Buffer.alloc(10, 0x30)); // ... and never the rest
        return undefined;
      },
      async (fake) => {
        const started = Date.now();
        await expect(httpTransport({ ...LOOPBACK, timeoutMs: 300 })(fake.url, REQUEST)).rejects.toThrow(
          /timed out after 300 ms/,
        );
        const elapsed = Date.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(250);
        expect(elapsed).toBeLessThan(3_000);
      },
    );
  });

  it('should time out a responder that never answers', async () => {
    await withFake(
      () => new Promise<undefined>(() => undefined),
      async (fake) => {
        const started = Date.now();
        await expect(httpTransport({ ...LOOPBACK, timeoutMs: 200 })(fake.url, REQUEST)).rejects.toThrow(
          /timed out after 200 ms/,
        );
        expect(Date.now() - started).toBeLessThan(3_000);
      },
    );
  });

  it("should cut a request at the run's deadline when less time is left than the timeout", async () => {
    await withFake(
      () => new Promise<undefined>(() => undefined),
      async (fake) => {
        const deadline = Date.now() + 300;
        const attempt = httpTransport({ ...LOOPBACK, timeoutMs: 60_000 })(fake.url, REQUEST, {
          timeLeft: () => deadline - Date.now(),
        });
        const err = await attempt.then(
          () => undefined,
          (e: unknown) => e as DeadlineError,
        );
        expect(err).toBeInstanceOf(DeadlineError);
        expect(err!.code).toBe('DEADLINE');
        expect(err!.message).toMatch(/^cut after \d+ ms: the run's deadline came$/);
        // The request reached the responder (a GET) and was aborted, not answered.
        expect(fake.requests.map((r) => r.method)).toEqual(['GET']);
      },
    );
  });

  it('should keep the configured timeout when more time than that is left', async () => {
    await withFake(
      () => new Promise<undefined>(() => undefined),
      async (fake) => {
        const transport = httpTransport({ ...LOOPBACK, timeoutMs: 200 });
        await expect(transport(fake.url, REQUEST, { timeLeft: () => 600_000 })).rejects.toThrow(
          /^timed out after 200 ms$/,
        );
      },
    );
  });

  it('should not send a request when no time is left', async () => {
    await withFake(
      () => ({ body: BODY }),
      async (fake) => {
        const err = await httpTransport(LOOPBACK)(fake.url, REQUEST, { timeLeft: () => -5 }).then(
          () => undefined,
          (e: unknown) => e as DeadlineError,
        );
        expect(err).toBeInstanceOf(DeadlineError);
        expect(err!.message).toMatch(/^not sent: the run's deadline has come/);
        expect(fake.requests).toEqual([]);
      },
    );
  });

  it('should return Cache-Control max-age=600 as maxAgeSec 600', async () => {
    await withFake(
      () => ({ headers: { 'cache-control': 'public, max-age=600, no-transform' }, body: BODY }),
      async (fake) => {
        await expect(httpTransport(LOOPBACK)(fake.url, REQUEST)).resolves.toEqual({
          der: BODY,
          maxAgeSec: 600,
        });
      },
    );
  });

  it('should leave maxAgeSec undefined without Cache-Control', async () => {
    await withFake(
      () => ({ body: BODY }),
      async (fake) => {
        const res = await httpTransport(LOOPBACK)(fake.url, REQUEST);
        expect(res.maxAgeSec).toBeUndefined();
      },
    );
  });
});

type Cut = 'resetAndDestroy' | 'destroy';

/**
 * Sends the headers and 10 of 1 000 body bytes, then cuts the connection: `resetAndDestroy` sends
 * a TCP RST (node reports `read ECONNRESET` on the request), `destroy` closes it early (node
 * reports `aborted` on the response only: the path that once left the request timer running).
 */
function cutMidBody(res: http.ServerResponse, cut: Cut, onCut: () => void = () => undefined): undefined {
  res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': '1000' });
  res.write(Buffer.alloc(10, 0x30), () =>
    setTimeout(() => {
      onCut();
      if (cut === 'destroy') res.socket?.destroy();
      else res.socket?.resetAndDestroy();
    }, 50),
  );
  return undefined;
}

describe('httpTransport: a connection reset mid-body', () => {
  it.each<Cut>(['resetAndDestroy', 'destroy'])(
    'should fail with "connection reset" (code ECONNRESET), not "aborted" (%s)',
    async (cut) => {
      await withFake(
        (_req, res) => cutMidBody(res, cut),
        async (fake) => {
          const err = await httpTransport({ ...LOOPBACK, timeoutMs: 20_000 })(fake.url, REQUEST).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(HttpError);
          expect(err).toMatchObject({ code: 'ECONNRESET' });
          expect((err as Error).message).toBe('connection reset by the peer while reading the response body');
        },
      );
    },
  );

  // Regression: the run reported in ~1 s, then the process lived until the request timer fired.
  it('should let `ocsp-renewer fetch` exit long before its 20 s request timeout', async () => {
    let resetAt: number | undefined;
    const fake = await startFakeResponder((_req, res) =>
      cutMidBody(res, 'destroy', () => (resetAt = Date.now())),
    );
    const pki = await makeTestPki({ ocspUrl: fake.url });
    try {
      const chainFile = path.join(pki.dir, 'reset-chain.pem');
      await writeFile(
        chainFile,
        (await readFile(pki.leaves.good.cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8')),
      );
      const env = { ...process.env };
      delete env[ALLOW_PRIVATE_ENV];
      const child = spawn(
        process.execPath,
        ['lambda/cli/ocsp-renewer.js', 'fetch', chainFile, '--timeout', '20', '--allow-private-responders'],
        { cwd: path.resolve(import.meta.dirname, '..'), env, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      const exitedAt = Date.now();
      clearTimeout(killer);

      expect(resetAt).toBeDefined();
      // With the timer left running the process lives until 20 s after the request; allow 10 s.
      expect(exitedAt - resetAt!).toBeLessThan(10_000);
      expect(stderr).toMatch(/fetch http:\/\/127\.0\.0\.1:\d+\/: connection reset by the peer/);
      expect(stderr).not.toMatch(/aborted/);
      expect(code).toBe(1);
    } finally {
      await fake.stop();
      await pki.cleanup();
    }
  }, 180_000);
});

describe('httpTransport: SSRF guard (allowPrivate false)', () => {
  const guarded = httpTransport({ ...DEFAULT_HTTP, allowPrivate: false });

  it.each([
    ['127.0.0.1', (port: number) => `http://127.0.0.1:${port}/`],
    ['localhost', (port: number) => `http://localhost:${port}/`],
    ['[::1]', (port: number) => `http://[::1]:${port}/`],
    ['IPv4-mapped [::ffff:127.0.0.1]', (port: number) => `http://[::ffff:127.0.0.1]:${port}/`],
    ['0.0.0.0 (reaches loopback on Linux)', (port: number) => `http://0.0.0.0:${port}/`],
    ['decimal 2130706433 (= 127.0.0.1)', (port: number) => `http://2130706433:${port}/`],
    // Issue 20 (keep): every numeric spelling of loopback the WHATWG URL parser accepts.
    ['short 127.1', (port: number) => `http://127.1:${port}/`],
    ['octal 0177.0.0.1', (port: number) => `http://0177.0.0.1:${port}/`],
    ['hex 0x7f.0.0.1', (port: number) => `http://0x7f.0.0.1:${port}/`],
    ['hex 0x7f000001', (port: number) => `http://0x7f000001:${port}/`],
    ['127.255.255.254 (all of 127/8)', (port: number) => `http://127.255.255.254:${port}/`],
    ['long IPv6 [0:0:0:0:0:0:0:1]', (port: number) => `http://[0:0:0:0:0:0:0:1]:${port}/`],
    ['IPv4-mapped hex [::ffff:7f00:1]', (port: number) => `http://[::ffff:7f00:1]:${port}/`],
  ])('should refuse %s and send nothing', async (_name, urlFor) => {
    await withFake(
      () => ({ body: BODY }),
      async (fake) => {
        const err = await guarded(urlFor(fake.port), REQUEST).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ForbiddenAddressError);
        expect((err as Error).message).toMatch(/refusing/);
        expect(fake.requests).toEqual([]);
      },
    );
  });

  it.each(['ftp://ocsp.example.test/', 'file:///etc/passwd'])('should refuse %s', async (url) => {
    await expect(guarded(url, REQUEST)).rejects.toThrow(/refusing (ftp|file):/);
  });

  it('should refuse ftp and file even with allowPrivate', async () => {
    await expect(httpTransport(LOOPBACK)('ftp://127.0.0.1/', REQUEST)).rejects.toThrow(/refusing ftp:/);
    await expect(httpTransport(LOOPBACK)('file:///etc/passwd', REQUEST)).rejects.toThrow(/refusing file:/);
  });
});

describe('httpTransport: what a responder sends is taken as it is (issue 20, keep)', () => {
  it('should ask for no compression and never decompress: a gzip body is the bytes sent', async () => {
    const gz = gzipSync(BODY);
    await withFake(
      () => ({ headers: { 'content-encoding': 'gzip' }, body: gz }),
      async (fake) => {
        const { der } = await httpTransport(LOOPBACK)(`${fake.url}`, REQUEST);
        expect(der).toEqual(gz);
      },
    );
    // What the client sent: no Accept-Encoding at all.
    const seen: http.IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.end(BODY);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await httpTransport(LOOPBACK)(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, REQUEST);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]!['accept-encoding']).toBeUndefined();
  });

  it('should refuse a response whose headers overflow (a 64 KiB header), as an HTTP failure', async () => {
    const server = createServer();
    server.on('connection', (socket) => {
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nx-junk: ${'a'.repeat(64 * 1024)}\r\ncontent-length: 2\r\n\r\nok`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const err = await httpTransport(LOOPBACK)(url, REQUEST).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toMatch(/header/i);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('httpTransport: keep-alive connections', () => {
  /** A loopback server answering BODY, counting the connections it accepted. */
  async function withCountingServer(fn: (port: number, connections: () => number) => Promise<void>) {
    const server = createServer((_req, res) => res.end(BODY));
    let accepted = 0;
    server.on('connection', () => accepted++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await fn((server.address() as AddressInfo).port, () => accepted);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it('should send successive requests to one responder over one connection', async () => {
    await withCountingServer(async (port, connections) => {
      const transport = httpTransport(LOOPBACK);
      for (let i = 0; i < 3; i++)
        expect((await transport(`http://127.0.0.1:${port}/`, REQUEST)).der).toEqual(BODY);
      expect(connections()).toBe(1);
    });
  });

  it('should never reuse a connection opened with allowPrivate for a guarded request', async () => {
    await withCountingServer(async (port, connections) => {
      const url = `http://localhost:${port}/`;
      expect((await httpTransport(LOOPBACK)(url, REQUEST)).der).toEqual(BODY);
      const err = await httpTransport({ ...DEFAULT_HTTP, allowPrivate: false })(url, REQUEST).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ForbiddenAddressError);
      expect(connections()).toBe(1);
    });
  });
});

describe('run() over the transport: a 200 answer that is an HTML page', () => {
  let fake: FakeResponder;
  let pki: TestPki;
  let work: string;

  beforeAll(async () => {
    fake = await startFakeResponder(() => ({
      headers: { 'content-type': 'text/html' },
      body: '<!doctype html><html><body>Service temporarily unavailable</body></html>',
    }));
    pki = await makeTestPki({ ocspUrl: fake.url });
    work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-transport-'));
  });

  afterAll(async () => {
    await fake?.stop();
    await pki?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('should fail the certificate at validate with "does not parse" and keep the stored staple', async () => {
    const certs = path.join(work, 'certs');
    const staples = path.join(work, 'staples');
    const chain =
      (await readFile(pki.leaves.good.cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8'));
    await mkdir(certs, { recursive: true });
    await mkdir(staples, { recursive: true });
    await writeFile(path.join(certs, 'good.pem'), chain);

    // A stored staple that is still valid but due (past its refresh point), so the run fetches.
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const [leaf, issuer] = parseCertificates(Buffer.from(chain));
    const stored = await buildOcspResponse({
      certId: certIdFor(leaf!, issuer!),
      thisUpdate: new Date(now.getTime() - 20 * 3_600_000),
      nextUpdate: new Date(now.getTime() + 4 * 3_600_000),
      signer: await loadSigner(pki.intermediate.cert, pki.intermediate.key),
    });
    await writeFile(path.join(staples, 'good.ocsp'), stored);

    const report = await run({
      source: new FsCertificateSource(certs),
      store: new FsStapleStore(staples),
      transport: httpTransport(LOOPBACK),
      clock: () => now,
    });

    expect(report.results).toHaveLength(1);
    const row = report.results[0]!;
    expect(row).toMatchObject({ name: 'good.pem', action: 'failed', stage: 'validate' });
    expect(row.reason).toMatch(/^validate good\.pem: http:\/\/127\.0\.0\.1:\d+\/: does not parse: /);
    expect(methods(fake)).toEqual(['GET']);
    expect(await readFile(path.join(staples, 'good.ocsp'))).toEqual(stored);
    // The request the run sent is the one it builds for this certificate.
    expect(fake.requests[0]!.url).toBe(
      `/${encodeURIComponent(buildOcspRequest(certIdFor(leaf!, issuer!)).toString('base64'))}`,
    );
  });
});
