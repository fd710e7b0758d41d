/**
 * The run state as one JSON document (the CLI's file, the Lambda's S3 object): written in pieces,
 * read back whole, and written only when it changed since it was loaded or last saved.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileStateBlob, StateStore } from '../lambda/adapters/state-store.js';
import { compareKeys } from '../lambda/core/key-order.js';
import { buildStatus, entriesFromState, formatStatus } from '../lambda/core/status.js';
import type { RunState, StateEntry } from '../lambda/renew/ports.js';
import { renderStatusPage } from '../lambda/report/status-page.js';

const NOW = new Date('2026-11-30T12:00:00Z');

let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-state-'));
  file = path.join(dir, 'state.json');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `n` entries under keys that do not sort as they are made, with a quote and non-ASCII in one. */
function stateOf(n: number): RunState {
  const state: RunState = new Map();
  for (let i = n - 1; i >= 0; i--) {
    const entry: StateEntry = {
      certTag: `${1000 + i}-1234-1764500000000000000`,
      failures: i % 3,
      action: i % 3 ? 'failed' : 'renewed',
      reason: i === 7 ? 'fetch "x": réponse 503' : 'fresh',
      nextDue: '2026-12-01T00:00:00.000Z',
    };
    state.set(`dir-${i % 10}/leaf-${i}.pem`, entry);
  }
  return state;
}

describe('StateStore', () => {
  it('should write a state of many 64 KiB pieces as one document, in key order, that loads back equal', async () => {
    const state = stateOf(3000);
    const store = new StateStore(fileStateBlob(file));
    expect(await store.save(state, NOW)).toBe(true);
    const body = await readFile(file, 'utf8');
    expect(body.length).toBeGreaterThan(4 * 64 * 1024);
    const doc = JSON.parse(body) as { version: number; savedAt: string; certs: Record<string, StateEntry> };
    expect(doc.version).toBe(1);
    expect(doc.savedAt).toBe(NOW.toISOString());
    expect(Object.keys(doc.certs)).toEqual([...state.keys()].sort(compareKeys));
    expect(await new StateStore(fileStateBlob(file)).load()).toEqual(state);
  });

  it('should not write a state unchanged since it was loaded or saved, and write one that changed', async () => {
    await new StateStore(fileStateBlob(file)).save(stateOf(50), NOW);
    const store = new StateStore(fileStateBlob(file));
    const state = await store.load();
    const before = await stat(file, { bigint: true });
    expect(await store.save(state, new Date(NOW.getTime() + 60_000))).toBe(false);
    expect((await stat(file, { bigint: true })).mtimeNs).toBe(before.mtimeNs);

    state.get('dir-7/leaf-7.pem')!.failures = 4;
    expect(await store.save(state, NOW)).toBe(true);
    expect(await store.save(state, NOW)).toBe(false);
    const reloaded = await new StateStore(fileStateBlob(file)).load();
    expect(reloaded.get('dir-7/leaf-7.pem')?.failures).toBe(4);
  });

  it('should rebuild from nothing when the file is corrupt, and write the next state', async () => {
    await writeFile(file, '{"version":1,"certs":');
    const events: Record<string, unknown>[] = [];
    const store = new StateStore(fileStateBlob(file), (e) => events.push(e));
    expect((await store.load()).size).toBe(0);
    expect(events).toMatchObject([{ msg: 'state corrupt; rebuilding' }]);
    expect(await store.save(stateOf(2), NOW)).toBe(true);
  });

  it('should drop a tampered entry with a warning, keep the good ones, and never crash status or the status page (issue 20)', async () => {
    const good: StateEntry = {
      failures: 0,
      certStatus: 'good',
      thisUpdate: '2026-11-30T00:00:00.000Z',
      nextUpdate: '2026-12-07T00:00:00.000Z',
      nextDue: '2026-12-03T00:00:00.000Z',
      action: 'renewed',
      reason: 'renewed',
      mustStaple: false,
    };
    const certs: Record<string, unknown> = {
      'good.pem': { ...good, extra: { not: 'kept' } },
      'action-object.pem': { ...good, action: { toString: null } },
      'error-array.pem': { ...good, failures: 1, lastError: ['a'] },
      'failures-text.pem': { ...good, failures: '3' },
      'due-garbage.pem': { ...good, nextDue: 'soon' },
      'status-weird.pem': { ...good, certStatus: 'fine' },
      'must-text.pem': { ...good, mustStaple: 'yes' },
      'null.pem': null,
    };
    await writeFile(file, JSON.stringify({ version: 1, savedAt: NOW.toISOString(), certs }));
    const events: Record<string, unknown>[] = [];
    const state = await new StateStore(fileStateBlob(file), (e) => events.push(e)).load();
    expect([...state.keys()]).toEqual(['good.pem']);
    expect(state.get('good.pem')).toEqual(good); // the unknown field is not kept
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ level: 'warn', msg: 'state entries dropped', state: file });
    expect(events[0]!.error).toBe(
      '7 bad entries dropped: action-object.pem: action is not a run action; error-array.pem: lastError is not a string; failures-text.pem: failures is not a count; …',
    );
    // What the Lambda's status page and `status` make of it.
    const report = buildStatus(
      entriesFromState(state, (k) => k.replace(/\.pem$/, '.ocsp')),
      NOW,
    );
    expect(() => renderStatusPage(report)).not.toThrow();
    expect(formatStatus(report)).toContain('good.pem');
  });
});
