/**
 * How a finished run's report and the objects it reads take memory: the run report object is
 * written from 64 KiB pieces, byte for byte what JSON.stringify gives (never one string of the
 * whole report); an object read from S3 is a Buffer of exactly its bytes, and a parsed certificate
 * owns a copy of exactly its DER, so neither keeps a slab of Node's shared Buffer pool alive. The
 * S3 side is s3rver on loopback.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getObject } from '../lambda/adapters/s3.js';
import { publishRun, runReportPieces } from '../lambda/aws/run-output.js';
import { Certificate, clearCertificateCache, parseCertificates } from '../lambda/core/certificate.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { VECTORS_DIR } from './helpers/vectors.js';
import { ACTIONS, type ReportRow, type RunReport } from '../lambda/renew/ports.js';

const BUCKET = 'run-output';
const NOW = new Date('2026-12-01T10:00:00.000Z');

/** A report of `n` rows (one failing with a quoted, non-ASCII reason), as run() makes them. */
function reportOf(n: number, extra: Partial<RunReport> = {}): RunReport {
  const results: ReportRow[] = [];
  for (let i = 0; i < n; i++) {
    results.push({
      key: `dir-${i % 7}/leaf-${i}.pem`,
      name: `dir-${i % 7}/leaf-${i}.pem`,
      staple: `dir-${i % 7}/leaf-${i}.ocsp`,
      action: i === 3 ? 'failed' : 'renewed',
      reason: i === 3 ? 'fetch "http://ocsp.example/": réponse 503 ✗' : 'renewed',
      ...(i === 3 ? { stage: 'fetch' as const } : { certStatus: 'good' as const }),
      thisUpdate: '2026-12-01T09:00:00.000Z',
      nextUpdate: '2026-12-08T09:00:00.000Z',
      nextDue: '2026-12-04T21:00:00.000Z',
      mustStaple: i % 2 === 0,
    });
  }
  const counts = Object.fromEntries(ACTIONS.map((a) => [a, 0])) as RunReport['counts'];
  counts.renewed = n - 1;
  counts.failed = 1;
  return {
    startedAt: '2026-12-01T09:59:00.000Z',
    finishedAt: NOW.toISOString(),
    dryRun: false,
    counts,
    revoked: 0,
    leastValidityHours: undefined,
    results,
    notReached: ['z/late-1.pem', 'z/late-2.pem'],
    ...extra,
  };
}

describe('runReportPieces', () => {
  it('should give exactly JSON.stringify(report), in several pieces of about 64 KiB, none one string of the whole', () => {
    const report = reportOf(3000);
    const pieces = runReportPieces(report);
    const whole = Buffer.from(JSON.stringify(report));
    expect(Buffer.concat(pieces).equals(whole)).toBe(true);
    expect(whole.length).toBeGreaterThan(8 * 64 * 1024);
    expect(pieces.length).toBeGreaterThan(8);
    // Each piece stops at the first row that takes it past 64 KiB.
    for (const piece of pieces) expect(piece.length).toBeLessThan(64 * 1024 + 1024);
  });

  it('should leave out an undefined leastValidityHours and keep a defined one, as JSON.stringify does', () => {
    for (const report of [
      reportOf(2),
      reportOf(2, { leastValidityHours: 12.5 }),
      reportOf(0, { notReached: [] }),
    ]) {
      expect(Buffer.concat(runReportPieces(report)).toString()).toBe(JSON.stringify(report));
    }
  });
});

describe('the run report object and the objects read from S3', () => {
  let s3rver: S3Server;
  let s3: S3Client;

  beforeAll(async () => {
    s3rver = await startS3Server({ buckets: [BUCKET] });
    s3 = s3rver.client();
  }, 120_000);

  afterAll(async () => {
    s3?.destroy();
    await s3rver?.stop();
  });

  it('should write the run report object byte for byte as JSON.stringify(report)', async () => {
    const report = reportOf(1500, { leastValidityHours: 167.5 });
    const lines: string[] = [];
    const summary = await publishRun(report, 'force', {
      s3,
      bucket: BUCKET,
      reportsPrefix: 'reports/',
      id: 'a1b2c3d4-0000',
      service: undefined,
      log: (line) => lines.push(line),
      now: () => NOW,
    });
    expect(summary.report).toBe(`s3://${BUCKET}/reports/runs/${report.startedAt}-a1b2c3d4.json`);
    const res = await s3.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: `reports/runs/${report.startedAt}-a1b2c3d4.json` }),
    );
    expect(res.ContentType).toBe('application/json');
    const body = Buffer.from(await res.Body!.transformToByteArray());
    expect(body.equals(Buffer.from(JSON.stringify(report)))).toBe(true);
    expect(lines.some((l) => l.includes('cannot write the run report'))).toBe(false);
  });

  it('getObject should give the bytes in a Buffer of exactly their size, not a slice of the shared pool', async () => {
    const small = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'certs/small.pem', Body: small }));
    const obj = await getObject(s3, BUCKET, 'certs/small.pem');
    expect(obj?.body.equals(small)).toBe(true);
    expect(obj?.body.byteOffset).toBe(0);
    expect(obj?.body.buffer.byteLength).toBe(small.length);
    expect(await getObject(s3, BUCKET, 'certs/absent.pem')).toBeUndefined();
  });
});

describe('Certificate', () => {
  const pem = readFileSync(path.join(VECTORS_DIR, 'openssl-ocsp-tests/ND1_Cert_EE.pem'));

  it('should own a copy of exactly its DER: no pool slab kept alive, and unchanged when the input changes', () => {
    clearCertificateCache();
    const [parsed] = parseCertificates(pem);
    const input = Buffer.from(parsed!.der);
    const direct = new Certificate(input);
    for (const cert of [parsed!, direct]) {
      expect(cert.der.byteOffset).toBe(0);
      expect(cert.der.buffer.byteLength).toBe(cert.der.length);
    }
    const before = Buffer.from(direct.der);
    input.fill(0);
    expect(direct.der.equals(before)).toBe(true);
  });
});
