import type { Context } from 'aws-lambda';
import { responderPolicyOf } from '../adapters/http.js';
import type { RunOptions } from '../renew/run-inputs.js';
import type { LambdaConfig } from './config.js';

/**
 * The run's deadline is the Lambda's, less this reserve for what follows the certificates: the
 * final state save, the run report object, the status page and the log lines. Every HTTP request
 * (OCSP, caIssuers) is cut at the run's deadline, so nothing in flight can eat the reserve; a
 * certificate starts only while at least one full HTTP timeout is left before it.
 */
export const DEADLINE_RESERVE_MS = 5_000;

/** Milliseconds left before the run's deadline, when the invocation has one (tests may not). */
export function timeLeftOf(
  context: Pick<Context, 'getRemainingTimeInMillis'> | undefined,
): (() => number) | undefined {
  return context ? () => context.getRemainingTimeInMillis() - DEADLINE_RESERVE_MS : undefined;
}

/**
 * The run options every run of the Lambda (lambda/aws/handler.ts) takes from its
 * configuration and the invocation's deadline; each adds what its event decides (force, scope).
 */
export function runOptionsFrom(config: LambdaConfig, timeLeft: (() => number) | undefined): RunOptions {
  return {
    onRevoked: config.onRevoked,
    hash: config.hash,
    policy: config.policy,
    naming: config.naming,
    concurrency: config.concurrency,
    perHostConcurrency: config.perHostConcurrency,
    responderPolicy: responderPolicyOf(config.http),
    timeLeft,
    shouldStop: timeLeft ? () => timeLeft() < config.http.timeoutMs : undefined,
  };
}
