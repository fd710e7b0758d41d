import { serialHex, toHex } from '../core/der.js';
import type { ParsedResponse } from '../core/ocsp-response.js';
import { printable } from '../core/printable.js';
import type { Verdict, VerdictCode } from '../core/verdict.js';
import type { RunReport } from '../renew/ports.js';
import { plural } from '../core/plural.js';

/** The `inspect --json` shape: what a staple says and what it is worth. */
export interface StapleExplanation {
  responseStatus: string;
  producedAt: string | null;
  responderId: { type: 'byName'; name: string } | { type: 'byKey'; keyHash: string } | null;
  responses: Array<{
    serialNumber: string;
    /** The CertID's hash (`sha1`, `sha256`, …, or its OID): one SingleResponse per hash a client may ask with. */
    hashAlgorithm: string;
    certStatus: string;
    thisUpdate: string;
    nextUpdate: string | null;
    revocationTime: string | null;
    revocationReason: string | null;
  }>;
  signature: { valid: boolean; signer: string; responderCert?: string };
  valid: boolean;
  /** The first failure's class (docs/validation.md, "What valid means"); null when valid. */
  code: VerdictCode | null;
  errors: string[];
}

/** The explanation of a verdict; `parsed` is undefined for bytes that are not an OCSP response. */
export function explainStaple(parsed: ParsedResponse | undefined, verdict: Verdict): StapleExplanation {
  const basic = parsed?.basic;
  const rid = basic?.responderId;
  return {
    responseStatus: parsed?.responseStatus ?? verdict.responseStatus,
    producedAt: basic?.producedAt.toISOString() ?? null,
    responderId: !rid
      ? null
      : 'byKey' in rid
        ? { type: 'byKey', keyHash: toHex(rid.byKey) }
        : { type: 'byName', name: rid.name },
    responses: (basic?.responses ?? []).map((r) => ({
      serialNumber: serialHex(r.certId.serial),
      hashAlgorithm: r.certId.hash ?? r.certId.hashOid,
      certStatus: r.certStatus,
      thisUpdate: r.thisUpdate.toISOString(),
      nextUpdate: r.nextUpdate?.toISOString() ?? null,
      revocationTime: r.revocationTime?.toISOString() ?? null,
      revocationReason: r.revocationReason ?? null,
    })),
    signature: {
      ...verdict.signature,
      ...(verdict.responderCert ? { responderCert: verdict.responderCert.subject } : {}),
    },
    valid: verdict.valid,
    code: verdict.valid ? null : (verdict.code ?? null),
    errors: verdict.errors,
  };
}

/**
 * The explanation as text, one `label: value` line per field. Names, URLs and errors come from
 * a certificate or a response: every line is `printable`, so a name holding a line break shows it
 * escaped and cannot forge a line.
 */
export function formatExplanation(e: StapleExplanation): string {
  const lines = [`valid:           ${e.valid ? 'yes' : 'NO'}`, `responseStatus:  ${e.responseStatus}`];
  if (e.producedAt) lines.push(`producedAt:      ${e.producedAt}`);
  if (e.responderId) {
    lines.push(
      `responderId:     ${e.responderId.type === 'byKey' ? `byKey ${e.responderId.keyHash}` : `byName ${e.responderId.name}`}`,
    );
  }
  lines.push(
    `signature:       ${e.signature.valid ? 'valid' : 'NOT valid'}, signer ${e.signature.signer}${e.signature.responderCert ? ` (${e.signature.responderCert})` : ''}`,
  );
  for (const r of e.responses) {
    lines.push(
      `response:        serial ${r.serialNumber} (${r.hashAlgorithm}) ${r.certStatus.toUpperCase()}` +
        (r.revocationTime
          ? ` since ${r.revocationTime}${r.revocationReason ? ` (${r.revocationReason})` : ''}`
          : '') +
        `, thisUpdate ${r.thisUpdate}, nextUpdate ${r.nextUpdate ?? '(none)'}`,
    );
  }
  if (e.code) lines.push(`code:            ${e.code}`);
  for (const err of e.errors) lines.push(`error:           ${err}`);
  return lines.map(printable).join('\n');
}

/** The run report as a table for people; `--json` prints the report itself. */
export function formatRunReport(report: RunReport): string {
  // Keys and reasons come from outside: escaped, so no name moves the cursor or forges a row.
  const rows = report.results.map((r) =>
    [
      r.key,
      r.action,
      r.certStatus ?? '-',
      r.nextUpdate ?? '-',
      r.nextDue ?? '-',
      r.stage ? `[${r.stage}] ${r.reason}` : r.reason,
    ].map(printable),
  );
  const header = ['CERTIFICATE', 'ACTION', 'STATUS', 'NEXT UPDATE', 'NEXT DUE', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const counts = Object.entries(report.counts)
    .filter(([, n]) => n > 0)
    .map(([a, n]) => `${n} ${a}`)
    .join(', ');
  const out = [
    line(header),
    ...rows.map(line),
    '',
    `${plural(report.results.length, 'certificate')}: ${counts || 'none'}`,
  ];
  if (report.revoked > 0)
    out.push(`WARNING: ${plural(report.revoked, 'certificate')} reported REVOKED by their responder`);
  // A must-staple certificate without a fresh staple makes clients refuse the connection.
  const mustStapleFailures = report.results
    .filter((r) => r.mustStaple && r.action === 'failed')
    .map((r) => printable(r.key));
  if (mustStapleFailures.length) {
    out.push(
      `WARNING: ${plural(mustStapleFailures.length, 'must-staple certificate')} failing renewal: ${mustStapleFailures.join(', ')}`,
    );
  }
  if (report.notReached.length)
    out.push(`not reached (next run): ${report.notReached.map(printable).join(', ')}`);
  if (report.dryRun) out.push('dry run: nothing was fetched or written');
  return out.join('\n');
}
