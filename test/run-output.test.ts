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
import { publishMetrics, publishRun, runReportPieces, type RunOutput } from '../lambda/aws/run-output.js';
import { batchSummary, summarise } from '../lambda/aws/run-summary.js';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { renewerLogger, renewerMetrics } from '../lambda/aws/telemetry.js';
import { Certificate, clearCertificateCache, parseCertificates } from '../lambda/core/certificate.js';
import { capturing } from './helpers/lambda-output.js';
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

describe('the upload batch summary', () => {
  it('should name a failing certificate by `key`, as the run summary and every other line do', () => {
    const report = reportOf(5);
    const failure = { key: 'dir-3/leaf-3.pem', stage: 'fetch', reason: report.results[3]!.reason };
    expect(batchSummary(report, []).failures).toEqual([failure]);
    expect(summarise(report, 'upload', null).failures).toEqual([failure]);
  });
});

describe('the run report object, its log lines and metrics, and the objects read from S3', () => {
  let s3rver: S3Server;
  let s3: S3Client;
  /** Where publishRun writes, with the Logger and Metrics the Lambda entry builds. */
  const output = (service?: string): RunOutput => {
    const logger = renewerLogger(service);
    return {
      s3,
      bucket: BUCKET,
      reportsPrefix: 'reports/',
      id: 'a1b2c3d4-0000',
      service,
      logger,
      metrics: renewerMetrics(logger),
      now: () => NOW,
    };
  };

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
    const { result: summary, output: written } = await capturing(() => publishRun(report, 'force', output()));
    expect(summary.report).toBe(`s3://${BUCKET}/reports/runs/${report.startedAt}-a1b2c3d4.json`);
    const res = await s3.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: `reports/runs/${report.startedAt}-a1b2c3d4.json` }),
    );
    expect(res.ContentType).toBe('application/json');
    const body = Buffer.from(await res.Body!.transformToByteArray());
    expect(body.equals(Buffer.from(JSON.stringify(report)))).toBe(true);
    expect(written.lines.some((l) => l.includes('cannot write the run report'))).toBe(false);
  });

  it('should write one EMF document through Powertools Metrics: namespace, exactly [Service], names, units, values, the run clock', async () => {
    const report = reportOf(5, { leastValidityHours: 12.345 });
    report.results[3]!.nextUpdate = undefined; // the failing certificate has no staple to fall back on
    const { output: written } = await capturing(() =>
      publishRun(report, 'due', output('ocsp-renewer/Prod/Renewer')),
    );
    const documents = written.records().filter((r) => '_aws' in r);
    expect(documents).toHaveLength(1);
    // toEqual: a lowercase `service` dimension (Powertools' default) would be an extra key here and
    // an extra name in Dimensions, and the alarms (which match [Service] exactly) would see nothing.
    expect(documents[0]).toEqual({
      _aws: {
        Timestamp: NOW.getTime(),
        CloudWatchMetrics: [
          {
            Namespace: 'OcspRenewer',
            Dimensions: [['Service']],
            Metrics: [
              { Name: 'Renewed', Unit: 'Count' },
              { Name: 'Failed', Unit: 'Count' },
              { Name: 'FailingWithoutStaple', Unit: 'Count' },
              { Name: 'Skipped', Unit: 'Count' },
              { Name: 'Revoked', Unit: 'Count' },
              { Name: 'NotReached', Unit: 'Count' },
              { Name: 'LeastValidityHours', Unit: 'None' },
            ],
          },
        ],
      },
      Service: 'ocsp-renewer/Prod/Renewer',
      Renewed: 4,
      Failed: 1,
      FailingWithoutStaple: 1,
      Skipped: 0,
      Revoked: 0,
      NotReached: 2,
      LeastValidityHours: 12.35,
    });
  });

  it('should leave Renewed (the NoRun heartbeat) out of a dry run, and default Service to ocsp-renewer', async () => {
    const logger = renewerLogger();
    const metrics = renewerMetrics(logger);
    const { output: written } = await capturing(async () => {
      publishMetrics(metrics, reportOf(2, { dryRun: true }), NOW, undefined);
      // The same instance again (one per container): its second document is as clean as the first.
      publishMetrics(metrics, reportOf(2, { dryRun: true }), NOW, '');
    });
    const documents = written.records().filter((r) => '_aws' in r);
    expect(documents).toHaveLength(2);
    for (const doc of documents) {
      const [directive] = (
        doc._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] }
      ).CloudWatchMetrics;
      expect(directive!.Dimensions).toEqual([['Service']]);
      expect(directive!.Metrics.map((m) => m.Name)).toEqual([
        'Failed',
        'FailingWithoutStaple',
        'Skipped',
        'Revoked',
        'NotReached',
      ]);
      expect(doc).toMatchObject({ Service: 'ocsp-renewer' });
      expect(doc).not.toHaveProperty('Renewed');
      expect(doc).not.toHaveProperty('service');
    }
  });

  it("would see Powertools' lowercase service dimension without renewerMetrics: the check above can fail", async () => {
    const { output: written } = await capturing(async () =>
      publishMetrics(new Metrics({ namespace: 'OcspRenewer' }), reportOf(2), NOW, 'ocsp-renewer'),
    );
    const [doc] = written.records().filter((r) => '_aws' in r);
    const [directive] = (doc!._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics;
    expect(directive!.Dimensions).toEqual([['service', 'Service']]);
    expect(doc).toHaveProperty('service');
  });

  it('should log the summary and each failure as Powertools lines, at warn when a certificate failed', async () => {
    const report = reportOf(5);
    const { result: summary, output: written } = await capturing(() => publishRun(report, 'batch', output()));
    const lines = written.records().filter((r) => !('_aws' in r));
    const runReport = lines.find((l) => l.message === 'run report');
    expect(runReport).toEqual({
      level: 'WARN',
      message: 'run report',
      timestamp: expect.any(String) as unknown,
      service: 'ocsp-renewer',
      sampling_rate: 0,
      ...JSON.parse(JSON.stringify(summary)),
    });
    expect(lines.filter((l) => l.message === 'certificate failed')).toEqual([
      expect.objectContaining({
        level: 'WARN',
        certificate: 'dir-3/leaf-3.pem',
        stage: 'fetch',
        reason: 'fetch "http://ocsp.example/": réponse 503 ✗',
      }),
    ]);
    const quiet = reportOf(2);
    quiet.results.splice(0, quiet.results.length);
    quiet.counts.failed = 0;
    const { output: calm } = await capturing(() => publishRun(quiet, 'batch', output()));
    expect(calm.records().find((l) => l.message === 'run report')).toMatchObject({ level: 'INFO' });
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
