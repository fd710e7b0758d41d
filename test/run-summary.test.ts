/**
 * The summaries the Lambda entry points return and log instead of the run report (the renewer's
 * RunSummary and the fleet worker's BatchSummary) list the same failures: the first
 * SUMMARY_FAILURES failed rows, in report order.
 */
import { describe, expect, it } from 'vitest';
import { firstFailures, SUMMARY_FAILURES } from '../lambda/aws/run-summary.js';
import type { ReportRow } from '../lambda/renew/ports.js';

const row = (i: number, action: ReportRow['action']): ReportRow => ({
  key: `c${i}.pem`,
  staple: `c${i}.ocsp`,
  action,
  reason: action,
});

describe('firstFailures', () => {
  it('gives the first SUMMARY_FAILURES (20) failed rows, in report order', () => {
    const rows = Array.from({ length: 60 }, (_, i) => row(i, i % 2 ? 'failed' : 'renewed'));
    const failed = firstFailures(rows);
    expect(SUMMARY_FAILURES).toBe(20);
    expect(failed.map((r) => r.key)).toEqual(Array.from({ length: 20 }, (_, i) => `c${2 * i + 1}.pem`));
  });

  it('gives every failed row when there are fewer, and none for a run without failures', () => {
    expect(firstFailures([row(0, 'failed'), row(1, 'fresh'), row(2, 'failed')]).map((r) => r.key)).toEqual([
      'c0.pem',
      'c2.pem',
    ]);
    expect(firstFailures([row(0, 'renewed')])).toEqual([]);
  });
});
