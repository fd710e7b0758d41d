/**
 * Smoke test for the test helpers themselves: the generated PKI answered by a real `openssl ocsp`
 * responder, queried by the real `openssl ocsp` client.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpensslResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { LEAF_NAMES, makeTestPki, type LeafName, type TestPki } from './helpers/pki.js';
import { startS3Server } from './helpers/s3-server.js';

/** Runs openssl and returns stdout+stderr whatever the exit code (verify results go to stderr). */
function run(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('openssl', args, { timeout: 15_000 }, (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`));
  });
}

describe('test helpers: makeTestPki + startOpensslResponder', () => {
  let pki: TestPki;
  let delegated: OpensslResponder;
  let caSigned: OpensslResponder;

  beforeAll(async () => {
    let t = Date.now();
    pki = await makeTestPki();
    const pkiMs = Date.now() - t;

    t = Date.now();
    delegated = await startOpensslResponder({
      index: pki.index,
      ca: pki.intermediate.cert,
      rsigner: pki.signer.cert,
      rkey: pki.signer.key,
      port: pki.ocspPort, // the port baked into the leaves' AIA
    });
    const responderMs = Date.now() - t;
    caSigned = await startOpensslResponder({
      index: pki.index,
      ca: pki.intermediate.cert,
      rsigner: pki.intermediate.cert,
      rkey: pki.intermediate.key,
    });
    console.info(`makeTestPki: ${pkiMs} ms, startOpensslResponder: ${responderMs} ms`);
  });

  afterAll(async () => {
    await Promise.all([delegated?.stop(), caSigned?.stop()]);
    await pki?.cleanup();
  });

  const query = (leaf: LeafName, url: string): Promise<string> =>
    run([
      'ocsp',
      '-issuer', pki.intermediate.cert,
      '-cert', pki.leaves[leaf].cert,
      '-url', url,
      '-CAfile', pki.chain,
      '-resp_text',
    ]); // prettier-ignore

  it('uses the AIA URL for the delegated responder', () => {
    expect(delegated.url).toBe(pki.ocspUrl);
  });

  it('good leaf → good, delegated signature verifies', async () => {
    const out = await query('good', delegated.url);
    expect(out).toMatch(/good\.pem: good/);
    expect(out).toContain('Response verify OK');
    expect(out).toContain(`Serial Number: ${pki.leaves.good.serialHex}`);
    expect(out).toContain('OCSP Signing'); // the delegated signer's cert is embedded
  });

  it('revoked leaf → revoked, keyCompromise', async () => {
    const out = await query('revoked', delegated.url);
    expect(out).toMatch(/revoked\.pem: revoked/);
    // OpenSSL 3.0 prints the reason as "keyCompromise", not "Key Compromise".
    expect(out).toContain('Revocation Reason: keyCompromise (0x1)');
    expect(out).toContain('Response verify OK');
  });

  it('leaf missing from the index → unknown', async () => {
    const out = await query('unknownToCa', delegated.url);
    expect(out).toMatch(/unknownToCa\.pem: unknown/);
    expect(out).toContain('Response verify OK');
  });

  it('CA-signed responder (intermediate as rsigner) verifies too', async () => {
    const out = await query('ec', caSigned.url);
    expect(out).toMatch(/ec\.pem: good/);
    expect(out).toContain('Response verify OK');
    expect(out).not.toContain('OCSP Signing');
  });

  it('mustStaple has the TLS feature extension, noOcsp has no AIA OCSP URI', async () => {
    const mustStaple = await run(['x509', '-in', pki.leaves.mustStaple.cert, '-noout', '-text']);
    expect(mustStaple).toContain('TLS Feature');
    expect(mustStaple).toContain('status_request');
    expect(mustStaple).toContain(`OCSP - URI:${pki.ocspUrl}`);

    const noOcsp = await run(['x509', '-in', pki.leaves.noOcsp.cert, '-noout', '-text']);
    expect(noOcsp).not.toContain('OCSP - URI');
    expect(noOcsp).not.toContain('Authority Information Access');
  });

  it('index lists every leaf but unknownToCa; bundles carry a private key; expired is expired', async () => {
    const index = await readFile(pki.index, 'utf8');
    for (const name of LEAF_NAMES) {
      expect(index.includes(`\t${pki.leaves[name].serialHex}\t`), name).toBe(name !== 'unknownToCa');
    }
    expect(index).toMatch(
      new RegExp(`^R\\t\\S+\\t\\S+,keyCompromise\\t${pki.leaves.revoked.serialHex}\\t`, 'm'),
    );

    const bundle = await readFile(pki.leaves.good.bundle, 'utf8');
    expect(bundle.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    expect(bundle).toContain('-----BEGIN PRIVATE KEY-----');

    const expired = await run(['x509', '-in', pki.leaves.expired.cert, '-noout', '-checkend', '0']);
    expect(expired).toContain('Certificate will expire');
    const good = await run(['x509', '-in', pki.leaves.good.cert, '-noout', '-checkend', '86400']);
    expect(good).toContain('Certificate will not expire');
  });
});

describe('test helpers: startS3Server', () => {
  it("keeps an idle connection past Node's 5 s default, so a client reusing it is not reset", async () => {
    const s3 = await startS3Server({ buckets: ['keep-alive'] });
    try {
      const { port } = new URL(s3.endpoint);
      const socket = connect(Number(port), '127.0.0.1');
      let closedAt: number | undefined;
      socket.on('close', () => (closedAt = Date.now()));
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      socket.write('GET /keep-alive HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
      await new Promise((r) => setTimeout(r, 6_500));
      expect(answer).toMatch(/^HTTP\/1\.1 /);
      expect(closedAt).toBeUndefined();
      socket.destroy();
    } finally {
      await s3.stop();
    }
  }, 90_000);
});
