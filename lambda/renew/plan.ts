import { holdsOnlyPrivateKeys, parseCertificates, type Certificate } from '../core/certificate.js';
import { decideRefresh } from '../core/refresh-policy.js';
import { resolveIssuer } from './issuer.js';
import { digest, step, verdictOf, type Due, type Fetched, type Job, type RunContext } from './job.js';
import { failuresOf, noteFailure, type Outcome } from './outcome.js';
import type { CertificateObject, StateEntry, StoredStaple } from './ports.js';
import { dateOf, factsFromState, factsOf, rowFacts, stateFacts } from './staple-facts.js';

/**
 * Read and parse the certificate, find its issuer, read and validate the stored staple, decide.
 * Returns the outcome when nothing is to be fetched (skipped, fresh, withheld, backing off, a dry
 * run), else what the fetch needs.
 */
export async function plan(ctx: RunContext, j: Job): Promise<Outcome | Due> {
  const read = await readCertificate(ctx, j);
  if ('row' in read) return read;
  const { leaf, certs } = read;
  noteSettings(ctx, j, leaf);
  const sibling = ctx.deps.source.readIssuerSibling?.bind(ctx.deps.source, j.key);
  const { issuer } = await step('issuer', j.key, 'issuer not found', () =>
    resolveIssuer(leaf, certs.slice(1), {
      sibling,
      pool: ctx.deps.issuerPool,
      directory: () => issuersBeside(ctx, j.key),
      download: ctx.deps.downloadIssuer,
    }),
  );
  const storedStaple = await readStoredStaple(ctx, j, leaf, issuer);
  return decide(ctx, j, { leaf, issuer, storedStaple });
}

/**
 * Read and parse the certificate file: its certificates, or the skipped outcome of a file that
 * holds nothing to staple (a private key, only CA certificates, no OCSP URL, expired).
 */
async function readCertificate(
  ctx: RunContext,
  j: Job,
): Promise<Outcome | { leaf: Certificate; certs: Certificate[] }> {
  const { key, staple, now } = j;
  const bytes = await step('source', key, 'cannot read', () => ctx.deps.source.read(key));
  const skipped = (reason: string): Outcome => ({
    row: { key, staple, action: 'skipped', reason, mustStaple: j.mustStaple },
    state: j.prev,
  });
  // A private key beside the certificates (certbot's privkey.pem) is a key, not a failure.
  if (holdsOnlyPrivateKeys(bytes)) return skipped('a private key, not a certificate');
  const certs = await step('parse', key, 'not a certificate', async () => parseCertificates(bytes));
  // Only CA certificates (certbot's chain.pem): issuers for the certificates beside it.
  if (certs.every((c) => c.isCA)) {
    return skipped('only CA certificates: an issuer for the certificates beside it, not one to staple');
  }
  const leaf = certs[0]!;
  j.mustStaple = leaf.mustStaple;
  if (leaf.ocspUrls.length === 0) return skipped('no OCSP URL in the certificate');
  if (leaf.notAfter.getTime() < now.getTime())
    return skipped(`certificate expired ${leaf.notAfter.toISOString()}`);
  return { leaf, certs };
}

/** The job's settings fingerprint; failures under other settings are forgotten. */
function noteSettings(ctx: RunContext, j: Job, leaf: Certificate): void {
  j.settings = `${ctx.runSettings}.${digest(leaf.ocspUrls.join('\n'))}`;
  if (j.prev.failures > 0 && j.prev.settings !== j.settings) {
    // The settings a fetch depends on changed (a flag, the hash, the URLs): start afresh.
    j.prev = { ...j.prev, failures: 0, lastFailureAt: undefined, lastError: undefined };
  }
}

/** The stored staple, with its verdict and facts noted on the job. */
async function readStoredStaple(
  ctx: RunContext,
  j: Job,
  leaf: Certificate,
  issuer: Certificate,
): Promise<StoredStaple | undefined> {
  const storedStaple = await step('store', j.staple, 'cannot read the stored staple', () =>
    ctx.deps.store.get(j.staple),
  );
  if (storedStaple) {
    j.storedVerdict = verdictOf(storedStaple.der, {
      cert: leaf,
      issuer,
      now: j.now,
      skewMs: ctx.options.skewMs,
      cache: ctx.cache,
    });
    j.storedFacts = factsOf(j.storedVerdict, {
      maxAgeUntil: dateOf(j.prev.maxAgeUntil),
      certNotAfter: leaf.notAfter,
    });
  }
  return storedStaple;
}

/**
 * Decide from the stored staple (or a withheld revocation's window) and the revoked-handling
 * setting: the outcome when nothing is fetched, the stored staple to withhold now, or a fetch.
 */
function decide(ctx: RunContext, j: Job, found: Due): Outcome | Due {
  const { options } = ctx;
  const { key, staple, now, prev } = j;
  const { leaf, storedStaple } = found;
  // Withheld earlier: no staple on purpose. The revoked response's window says when to ask
  // again, as a staple's would, until the certificate file changes.
  const stillWithheld =
    !storedStaple &&
    prev.action === 'withheld' &&
    prev.certTag === j.object.tag &&
    prev.thisUpdate &&
    prev.nextUpdate;
  j.facts = stillWithheld ? { ...factsFromState(prev), certNotAfter: leaf.notAfter } : j.storedFacts;
  // A changed revoked-handling setting applies on this run, not when the staple is next due:
  // `withhold` takes a stored revoked staple down now; `publish` fetches a withheld one again.
  const onRevoked = options.onRevoked ?? 'publish';
  const withholdNow =
    onRevoked === 'withhold' && j.storedVerdict?.valid === true && j.storedVerdict.certStatus === 'revoked';
  const republish = stillWithheld && onRevoked === 'publish';

  const decision = decideRefresh({
    key,
    staple: j.facts,
    failures: failuresOf(prev),
    force: j.forced || Boolean(republish),
    now,
    policy: ctx.policy,
  });
  const keep: StateEntry = {
    ...prev,
    settings: j.settings,
    stapleTag: storedStaple?.tag,
    ...stateFacts(j.storedFacts),
  };
  if (withholdNow && storedStaple && j.storedVerdict) return withholdStored(ctx, j, found, storedStaple);
  if (!decision.due) return notDue(j, decision, keep, Boolean(stillWithheld));
  if (options.dryRun) {
    const reason = `would renew: ${decision.reason}`;
    return {
      row: { key, staple, action: 'due', reason, ...rowFacts(j.storedFacts), mustStaple: j.mustStaple },
    };
  }
  return found;
}

/** Not due: a withheld certificate stays withheld; else fresh, or failed while backing off. */
function notDue(
  j: Job,
  decision: ReturnType<typeof decideRefresh>,
  keep: StateEntry,
  stillWithheld: boolean,
): Outcome {
  const { key, staple, prev } = j;
  const nextDue = decision.nextDue.toISOString();
  if (stillWithheld && !decision.backingOff) {
    const reason = prev.reason ?? 'certificate is REVOKED; staple withheld';
    return {
      row: {
        key,
        staple,
        action: 'withheld',
        reason,
        ...rowFacts(j.facts),
        nextDue,
        mustStaple: j.mustStaple,
      },
      state: keep,
    };
  }
  // Still failing, only waiting out the backoff: say so, with the last error.
  const action = decision.backingOff ? 'failed' : 'fresh';
  const reason = decision.backingOff
    ? `${decision.reason}: ${prev.lastError ?? 'earlier failure'}`
    : noteFailure(decision.reason, prev);
  return {
    row: { key, staple, action, reason, ...rowFacts(j.storedFacts), nextDue, mustStaple: j.mustStaple },
    state: keep,
  };
}

/** `--on-revoked withhold` and a stored revoked staple: nothing to fetch, it is withheld now. */
function withholdStored(ctx: RunContext, j: Job, found: Due, storedStaple: StoredStaple): Outcome | Due {
  const { key, staple, now, prev } = j;
  if (ctx.options.dryRun) {
    const reason = 'would withhold the stored revoked staple (--on-revoked withhold)';
    return {
      row: { key, staple, action: 'due', reason, ...rowFacts(j.storedFacts), mustStaple: j.mustStaple },
    };
  }
  const withholdStored: Fetched = {
    der: storedStaple.der,
    url: prev.responder ?? '',
    verdict: j.storedVerdict!,
    decision: {
      replace: false,
      action: 'withheld',
      reason: 'certificate is REVOKED; stored staple withheld (--on-revoked withhold)',
    },
    fetchedAt: now,
    maxAgeUntil: dateOf(prev.maxAgeUntil),
  };
  return { ...found, withholdStored };
}

/**
 * The CA certificates in the certificate files of `key`'s directory (certbot: `chain.pem` and
 * `fullchain.pem` for `cert.pem`), read and parsed once per directory and run, when a certificate
 * there has no issuer in its own bundle or beside it. Files that do not parse offer nothing.
 */
function issuersBeside(ctx: RunContext, key: string): Promise<Certificate[]> {
  const dir = directoryOf(key);
  let found = ctx.directoryIssuers.get(dir);
  if (!found) {
    const keys = (ctx.directoryKeys ??= keysByDirectory(ctx.objects)).get(dir) ?? [];
    found = (async () => {
      const out: Certificate[] = [];
      for (const k of keys) {
        try {
          out.push(...parseCertificates(await ctx.deps.source.read(k)).filter((c) => c.isCA));
        } catch {
          // Not a certificate file (or unreadable): its own row says so.
        }
      }
      return out;
    })();
    ctx.directoryIssuers.set(dir, found);
  }
  return found;
}

const directoryOf = (key: string): string => key.slice(0, key.lastIndexOf('/') + 1);

/**
 * The listing's keys grouped by directory, built once per run on first need (kept in the run's
 * context): a fleet with many directories must not scan the whole listing once per directory.
 */
function keysByDirectory(objects: readonly CertificateObject[]): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const { key } of objects) {
    const dir = directoryOf(key);
    const keys = index.get(dir);
    if (keys) keys.push(key);
    else index.set(dir, [key]);
  }
  return index;
}
