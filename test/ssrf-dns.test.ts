/**
 * The SSRF guard against DNS answers that change (issue 20, keep): a name that resolved to a public
 * address and then to loopback (DNS rebinding), or to both at once. No DNS server can be started
 * here for a made-up name, so node:dns's lookup, the system resolver the guard calls, answers
 * from a script; the guard and the transport are the real ones.
 */
import { createServer } from 'node:http';
import type { LookupAddress } from 'node:dns';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, vi } from 'vitest';

/** What the next lookups of `rebind.test` answer, in order. */
const answers: LookupAddress[][] = [];
let lookups = 0;

vi.mock('node:dns', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:dns')>();
  const lookup = (host: string, options: unknown, callback: (...args: unknown[]) => void) => {
    if (host !== 'rebind.test') return (real.lookup as (...args: unknown[]) => void)(host, options, callback);
    lookups++;
    const next = answers.shift() ?? [];
    callback(null, next);
  };
  return { ...real, default: { ...real, lookup }, lookup };
});

const { guardedLookup, ForbiddenAddressError } = await import('../lambda/adapters/ssrf-guard.js');
const { httpTransport } = await import('../lambda/adapters/transport.js');
const { DEFAULT_HTTP } = await import('../lambda/adapters/http.js');

const lookupOnce = (host: string) =>
  new Promise<{ err: Error | null; address: unknown }>((resolve) =>
    guardedLookup(host, {}, (err, address) => resolve({ err, address })),
  );

describe('guardedLookup: the address checked is each answer', () => {
  it('lets a public answer through, then refuses the loopback answer the same name gives next', async () => {
    answers.push([{ address: '93.184.216.34', family: 4 }], [{ address: '127.0.0.1', family: 4 }]);
    expect(await lookupOnce('rebind.test')).toEqual({ err: null, address: '93.184.216.34' });
    const second = await lookupOnce('rebind.test');
    expect(second.err).toBeInstanceOf(ForbiddenAddressError);
    expect(second.err!.message).toMatch(/^refusing rebind\.test: resolves to 127\.0\.0\.1/);
  });

  it('refuses an answer that mixes a public address with a forbidden one, whichever comes first', async () => {
    answers.push(
      [
        { address: '93.184.216.34', family: 4 },
        { address: '169.254.169.254', family: 4 },
      ],
      [
        { address: '::1', family: 6 },
        { address: '93.184.216.34', family: 4 },
      ],
    );
    expect((await lookupOnce('rebind.test')).err).toBeInstanceOf(ForbiddenAddressError);
    expect((await lookupOnce('rebind.test')).err).toBeInstanceOf(ForbiddenAddressError);
  });
});

describe('httpTransport: every connection resolves through the guard', () => {
  it('looks the name up again for each new connection and refuses it when it turns to loopback, sending nothing', async () => {
    let received = 0;
    const server = createServer((_req, res) => {
      received++;
      res.end('x');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const guarded = httpTransport({ ...DEFAULT_HTTP, allowPrivate: false, timeoutMs: 5_000 });
      lookups = 0;
      answers.push([{ address: '127.0.0.1', family: 4 }], [{ address: '127.0.0.1', family: 4 }]);
      for (let i = 0; i < 2; i++) {
        await expect(guarded(`http://rebind.test:${port}/`, Buffer.from('30'))).rejects.toThrow(
          /refusing rebind\.test: resolves to 127\.0\.0\.1/,
        );
      }
      expect(lookups).toBe(2);
      expect(received).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
