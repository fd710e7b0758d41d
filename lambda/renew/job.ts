import { createHash } from 'node:crypto';
import type pLimit from 'p-limit';
import type { Certificate } from '../core/certificate.js';
import { DeadlineError, errorMessage, RenewError, type Stage } from '../core/errors.js';
import type { RefreshPolicy, StapleFacts } from '../core/refresh-policy.js';
import type { ReplaceDecision } from '../core/replace.js';
import { type ValidationCache } from '../core/responder.js';
import { judgeStaple, type ValidationInput } from '../core/validate.js';
import { type Verdict } from '../core/verdict.js';
import {
  stapleKeyFor,
  type CertificateObject,
  type NamingOptions,
  type RefusedKey,
  type RunState,
  type StateEntry,
  type StoredStaple,
} from './ports.js';
import type { RunDeps, RunOptions } from './run-inputs.js';

// The run's context and one certificate's job, which the steps (plan, fetch, commit) share.

export interface RunContext {
  deps: RunDeps;
  options: RunOptions;
  naming: NamingOptions;
  /** Listed certificates refused by name (unsafe, or sharing a staple key): one failed row each. */
  refused: Map<string, RefusedKey>;
  policy: RefreshPolicy;
  cache: ValidationCache;
  hostLimit: (url: string) => ReturnType<typeof pLimit>;
  /** Key → tag of every object in the staple store, when the state is trusted (S3). */
  stapleTags: Map<string, string> | undefined;
  /** Digest of the run-wide settings a fetch depends on: the first half of `StateEntry.settings`. */
  runSettings: string;
  /** Digest of the refresh policy and onRevoked: `StateEntry.policy`. */
  policyDigest: string;
  /** This run's certificates (for the issuers beside a certificate). */
  objects: readonly CertificateObject[];
  /** Directory → the CA certificates in its certificate files, read once, when first needed. */
  directoryIssuers: Map<string, Promise<Certificate[]>>;
  /** Directory → the keys of `objects` in it, built once per run when first needed. */
  directoryKeys?: Map<string, string[]>;
}

/** What one certificate's steps learn, as they learn it; the failure path reads what is there. */
export interface Job {
  object: CertificateObject;
  key: string;
  staple: string;
  now: Date;
  forced: boolean;
  /** The state as the last run left it, with failures cleared once the settings changed. */
  prev: StateEntry;
  settings?: string;
  mustStaple?: boolean;
  /** The stored staple's verdict and facts. */
  storedVerdict?: Verdict;
  storedFacts?: StapleFacts;
  /** What the policy decides from: the stored staple, or a withheld revocation's window. */
  facts?: StapleFacts;
}

/** A due certificate, ready to fetch. */
export interface Due {
  leaf: Certificate;
  issuer: Certificate;
  storedStaple: StoredStaple | undefined;
  /** Nothing to fetch: the stored revoked staple is withheld now (`withhold` newly set). */
  withholdStored?: Fetched;
}

/** A fetched response that may be committed: replaced, or withheld. */
export interface Fetched {
  der: Buffer;
  url: string;
  verdict: Verdict;
  decision: Exclude<ReplaceDecision, { action: 'failed' }>;
  fetchedAt: Date;
  maxAgeUntil: Date | undefined;
}

export function startJob(ctx: RunContext, state: RunState, object: CertificateObject): Job {
  const force = ctx.options.force;
  return {
    object,
    key: object.key,
    staple: stapleKeyFor(object.key, ctx.naming),
    now: ctx.deps.clock(),
    forced: typeof force === 'function' ? force(object.key) : force === true,
    prev: state.get(object.key) ?? { failures: 0 },
  };
}

export async function step<T>(stage: Stage, key: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RenewError) throw err;
    if (err instanceof DeadlineError) {
      throw new DeadlineError(`${what}: ${err.message}`, { cause: err, stage });
    }
    const message = errorMessage(err);
    // `not a certificate: …` from the parser is not said twice.
    throw new RenewError(stage, key, message.startsWith(`${what}:`) ? message : `${what}: ${message}`, {
      cause: err,
    });
  }
}

/** Parses and validates; a staple that does not parse is simply an invalid verdict. */
export function verdictOf(der: Buffer, input: ValidationInput): Verdict {
  return judgeStaple(der, input).verdict;
}

/** A short stable digest for the settings fingerprint. */
export function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
