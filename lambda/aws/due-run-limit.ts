import { ConfigError } from './config.js';

/**
 * How many due certificates one scheduled due run renews itself (INLINE_MAX_KEYS); more are
 * handed to the state machine as a manifest. 2000 fit the worker's 5-minute timeout with room:
 * at the default concurrency a renewal takes well under a second of the run's time.
 */
export const INLINE_MAX_KEYS_DEFAULT = 2_000;

/** INLINE_MAX_KEYS from the environment: a whole number ≥ 0, or the default when unset. */
export function inlineMaxKeys(env: NodeJS.ProcessEnv): number {
  const raw = env.INLINE_MAX_KEYS;
  if (raw === undefined || raw === '') return INLINE_MAX_KEYS_DEFAULT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new ConfigError(`INLINE_MAX_KEYS must be a whole number ≥ 0, got "${raw}"`);
  }
  return n;
}
