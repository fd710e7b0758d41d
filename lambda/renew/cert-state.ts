import type { StateEntry, RunState } from './run.js';

/**
 * Per-certificate state, one record per certificate, for fleets whose state no longer fits one
 * document (adapters/dynamo-state.ts). Shaped like adapters/state-store.ts's StateStore (load a
 * RunState, let run() mutate it, save what changed), so the Lambda can swap one for the other,
 * plus what one document cannot do cheaply: read only the due certificates, retire one.
 */
export interface CertStateStore {
  readonly description: string;
  /** The states of these keys (absent keys are simply missing from the map). */
  load(keys: Iterable<string>): Promise<RunState>;
  /** The states whose next due time is at or before `now`: cost grows with what is due, not N. */
  loadDue(now: Date): Promise<RunState>;
  /**
   * Writes every state that changed since it was loaded, each conditional on the version read;
   * a concurrent writer's change is merged (mergeCertState), never lost. Keys loaded but gone
   * from `state` are deleted. The merged values are put back into `state`. Returns the writes.
   */
  save(state: RunState): Promise<number>;
  /** Forgets a certificate (it was deleted). */
  remove(key: string): Promise<void>;
}

/**
 * Merges two concurrent updates of one certificate's state, both made from `base` (what was read;
 * undefined when there was nothing). `ours` is the update being written, `theirs` what another
 * writer stored meanwhile.
 *
 * - failures: both writers' changes since `base` are kept (theirs + ours − base, never below 0),
 *   so two failing runs count two failures, and a success resets only the failures it saw;
 * - lastFailureAt / lastError: the later failure;
 * - the staple's facts (stapleTag, thisUpdate, nextUpdate, responderNotAfter, certStatus): the
 *   newer staple's (thisUpdate);
 * - maxAgeUntil: the later; nextDue: the earlier (at worst one extra check, never a missed one);
 * - the rest (certTag, action, reason, mustStaple): ours, the latest decision.
 */
export function mergeCertState(
  base: StateEntry | undefined,
  ours: StateEntry,
  theirs: StateEntry,
): StateEntry {
  const merged: StateEntry = { ...theirs, ...pick(ours, ['certTag', 'action', 'reason', 'mustStaple']) };
  merged.failures = Math.max(0, theirs.failures + ours.failures - (base?.failures ?? 0));
  const later = laterOf(ours.lastFailureAt, theirs.lastFailureAt);
  const failureFrom = later === undefined ? undefined : later === ours.lastFailureAt ? ours : theirs;
  setOrDelete(merged, 'lastFailureAt', failureFrom?.lastFailureAt);
  setOrDelete(merged, 'lastError', failureFrom?.lastError);
  const stapleFrom = time(ours.thisUpdate) >= time(theirs.thisUpdate) ? ours : theirs;
  for (const field of STAPLE_FIELDS) setOrDelete(merged, field, stapleFrom[field]);
  setOrDelete(merged, 'maxAgeUntil', laterOf(ours.maxAgeUntil, theirs.maxAgeUntil));
  setOrDelete(merged, 'nextDue', earlierOf(ours.nextDue, theirs.nextDue));
  return merged;
}

const STAPLE_FIELDS = ['stapleTag', 'thisUpdate', 'nextUpdate', 'responderNotAfter', 'certStatus'] as const;

function pick(state: StateEntry, fields: (keyof StateEntry)[]): Partial<StateEntry> {
  return Object.fromEntries(fields.filter((f) => state[f] !== undefined).map((f) => [f, state[f]]));
}

function setOrDelete<K extends keyof StateEntry>(
  state: StateEntry,
  field: K,
  value: StateEntry[K] | undefined,
) {
  if (value === undefined) delete state[field];
  else state[field] = value;
}

const time = (iso: string | undefined) => (iso ? Date.parse(iso) : -Infinity);

function laterOf(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return time(a) >= time(b) ? a : b;
}

function earlierOf(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return time(a) <= time(b) ? a : b;
}
