import { EventError } from './event.js';
import type { Invocation } from './invocation.js';
import { publishRun } from './run-output.js';
import type { RunSummary } from './run-summary.js';

/** A Distributed Map child's event: a batch of certificate keys (with or without the certs prefix). */
export interface MapBatchRequest {
  mode: 'batch';
  keys: string[];
  force: boolean;
  /** The keys' ETags as the listing gave them (the map passes them), by key. */
  etags: Map<string, string>;
  /**
   * Requests in flight per responder host for this batch (the map passes its share of the
   * per-host limit, so all children together stay within it); default PER_HOST_CONCURRENCY.
   */
  perHostConcurrency?: number;
}

/** `{"mode":"batch","keys":[…],"force":bool,"etags"?:[…],"perHostConcurrency"?:n}`; else EventError. */
export function parseMapBatch(event: Record<string, unknown>, certsPrefix: string): MapBatchRequest {
  const e = event;
  const unknown = Object.keys(e).filter(
    (k) => !['mode', 'keys', 'force', 'etags', 'perHostConcurrency'].includes(k),
  );
  if (unknown.length) throw new EventError(`unsupported event field(s): ${unknown.join(', ')}`);
  if (!Array.isArray(e.keys) || !e.keys.every((k) => typeof k === 'string' && k)) {
    throw new EventError('keys must be an array of certificate keys');
  }
  if (e.force !== undefined && typeof e.force !== 'boolean') throw new EventError('force must be a boolean');
  const keys = (e.keys as string[]).map((k) => (k.startsWith(certsPrefix) ? k.slice(certsPrefix.length) : k));
  if (
    e.etags !== undefined &&
    !(Array.isArray(e.etags) && e.etags.length === keys.length && e.etags.every((t) => typeof t === 'string'))
  ) {
    throw new EventError('etags must be an array of strings, one per key');
  }
  const etags = new Map(((e.etags as string[] | undefined) ?? []).map((tag, i) => [keys[i]!, tag]));
  const perHost = e.perHostConcurrency;
  if (perHost !== undefined && !(Number.isInteger(perHost) && (perHost as number) >= 1)) {
    throw new EventError('perHostConcurrency must be a whole number ≥ 1');
  }
  return {
    mode: 'batch',
    keys: [...new Set(keys)],
    force: e.force === true,
    etags,
    ...(perHost !== undefined ? { perHostConcurrency: perHost as number } : {}),
  };
}

/**
 * A map child: renews its batch (the state machine's ItemBatcher made it), without listing the
 * prefix. Returns a summary whose size does not grow with the batch (the ResultWriter keeps it).
 */
export async function mapBatch(request: MapBatchRequest, inv: Invocation): Promise<RunSummary> {
  const report = await inv.renew(
    request.keys.map((key) => ({ key, tag: request.etags.get(key) })),
    { force: request.force, perHostConcurrency: request.perHostConcurrency },
  );
  return publishRun(report, 'batch', inv.output, { keys: request.keys.length });
}
