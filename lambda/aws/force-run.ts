import { S3CertificateSource } from '../adapters/s3.js';
import { unsafeKeyReason, type CertificateObject } from '../renew/ports.js';
import { handOff, mapResultsLocation } from './due-run.js';
import { inlineMaxKeys } from './due-run-limit.js';
import type { RunRequest } from './event.js';
import { executionName, type Invocation } from './invocation.js';
import { mergeReports, publishRun } from './run-output.js';
import type { RunSummary } from './run-summary.js';

/**
 * A direct invocation, `{"mode":"force"}` (and S3 notifications sent straight to the function):
 * - with `keys`: those certificates, here (a key that names no certificate is a failed row);
 * - with `prefix`: the certificates under it, here when they fit INLINE_MAX_KEYS, else through
 *   the state machine as a manifest;
 * - neither: every certificate, always through the state machine's Distributed Map
 *   (`{"force":true}`, as ForceAllCommand starts it), whatever their number. The answer says
 *   which execution and where its results will be.
 * `dryRun` decides and reports, fetching and writing nothing; it always runs here (a dry run of
 * everything lists the prefix and stops at the deadline, leaving the rest in `notReached`).
 * Certificates kept in Secrets Manager (SECRETS_PREFIX) are always renewed here: a key that is
 * no S3 object but a secret, the secrets under `prefix`, and every secret beside the map's run.
 */
export async function forceRun(request: RunRequest, inv: Invocation): Promise<RunSummary> {
  const { config } = inv;
  const mode = request.mode;
  if (request.keys) {
    const objects = request.keys.map((key) => ({ key }));
    const secretKeys = new Set((await inv.secretCertificates()).map((o) => o.key));
    const existing = await Promise.all(
      // A listed secret is there; renew() then probes it for an S3 object first, once. An unsafe
      // name is never probed (S3 answers a `..` key 400): the run refuses it with its reason.
      objects.map(async (o) =>
        unsafeKeyReason(o.key) !== undefined || secretKeys.has(o.key) || (await inv.certificateExists(o.key))
          ? o
          : undefined,
      ),
    );
    const report = await inv.renew(
      existing.filter((o): o is CertificateObject => o !== undefined),
      { force: true, dryRun: request.dryRun, withSecrets: true },
    );
    // A forced key that names no certificate is a mistake worth a row, not silence.
    for (const key of request.keys.filter((_, i) => existing[i] === undefined)) {
      if (mode === 's3-event') continue; // a notification's sibling guess, not a user's key
      report.results.push({
        key,
        name: key,
        staple: '',
        action: 'failed',
        stage: 'source',
        reason: `source ${config.certsPrefix}${key}: no such certificate`,
      });
      report.counts.failed++;
    }
    return publishRun(report, mode, inv.output, { keys: request.keys.length });
  }
  // No prefix, or one that is the whole certificates prefix: everything, through the map.
  if (!request.prefix && !request.dryRun) {
    const now = inv.clock();
    const execution = await inv.startExecution(executionName('force', now, inv.output.id), { force: true });
    const where = { execution, results: mapResultsLocation(inv) };
    const secrets = await inv.secretCertificates();
    const report = secrets.length
      ? await inv.renew(secrets, { force: true, withSecrets: true })
      : mergeReports([], now);
    return publishRun(report, mode, inv.output, { inline: false, ...where });
  }
  const listed = await new S3CertificateSource(
    inv.s3,
    config.bucket,
    config.certsPrefix,
    config.naming,
  ).list();
  const inPrefix = (o: CertificateObject) => o.key.startsWith(request.prefix ?? '');
  const objects = listed.filter(inPrefix);
  const s3Keys = new Set(listed.map((o) => o.key));
  const secrets = (await inv.secretCertificates()).filter((o) => inPrefix(o) && !s3Keys.has(o.key));
  if (objects.length > inlineMaxKeys(inv.env) && !request.dryRun) {
    const report = secrets.length ? await inv.renew(secrets, { force: true, withSecrets: true }) : undefined;
    return handOff(inv, objects, true, 'force', {}, report);
  }
  const report = await inv.renew([...objects, ...secrets], {
    force: true,
    dryRun: request.dryRun,
    withSecrets: true,
  });
  return publishRun(report, mode, inv.output, { keys: objects.length });
}
