import { createHash } from 'node:crypto';
import { errorMessage } from '../core/errors.js';
import { compareKeys } from '../core/key-order.js';
import { readOptional, writeFileAtomic } from './filesystem.js';
import { ACTIONS, type StateEntry, type RunState } from '../renew/ports.js';

const VERSION = 1;

interface StateDocument {
  version: number;
  savedAt: string;
  certs: Record<string, StateEntry>;
}

/**
 * Where the state document lives: a file (fileStateBlob, below) or an S3 object (s3StateBlob in
 * ./s3.ts, so this file loads no AWS SDK for the CLI's file state).
 */
export interface StateBlob {
  readonly description: string;
  read(): Promise<Buffer | undefined>;
  write(body: Buffer): Promise<void>;
}

/**
 * The run state as one JSON document: per certificate its tag, the staple's tag and
 * validity, the next due time, consecutive failures, the last error and outcome. It is a cache:
 * missing or unreadable, it is rebuilt from the certificates and staples by the next run, and a
 * staple whose tag differs from the recorded one is always read again. It is written only when
 * it changed, so a quiet run writes nothing.
 */
export class StateStore {
  /** Digest of the `certs` JSON as loaded or last saved: a state unchanged since is not written. */
  private savedDigest: string | undefined;

  constructor(
    private readonly blob: StateBlob,
    private readonly log: (event: Record<string, unknown>) => void = () => undefined,
  ) {}

  async load(): Promise<RunState> {
    let body: Buffer | undefined;
    try {
      body = await this.blob.read();
    } catch (err) {
      this.log({
        level: 'warn',
        msg: 'state unreadable; rebuilding',
        state: this.blob.description,
        error: errorMessage(err),
      });
      return new Map();
    }
    if (!body) return new Map();
    try {
      const doc = JSON.parse(body.toString('utf8')) as StateDocument;
      if (doc.version !== VERSION || typeof doc.certs !== 'object' || doc.certs === null) {
        throw new Error(`unexpected state version ${String(doc.version)}`);
      }
      const state: RunState = new Map();
      const dropped: string[] = [];
      for (const [key, value] of Object.entries(doc.certs)) {
        const entry = checkedStateEntry(value);
        if (typeof entry === 'string') dropped.push(`${key}: ${entry}`);
        else state.set(key, entry);
      }
      if (dropped.length) {
        // A tampered or foreign entry is forgotten (the next run rebuilds it), never trusted.
        this.log({
          level: 'warn',
          msg: 'state entries dropped',
          state: this.blob.description,
          error: `${dropped.length} bad entr${dropped.length === 1 ? 'y' : 'ies'} dropped: ${dropped.slice(0, 3).join('; ')}${dropped.length > 3 ? '; …' : ''}`,
        });
      }
      this.savedDigest = serialise(state, false).digest;
      return state;
    } catch (err) {
      this.log({
        level: 'warn',
        msg: 'state corrupt; rebuilding',
        state: this.blob.description,
        // JSON.parse's own message (a token, a position) says nothing to the operator.
        error: err instanceof SyntaxError ? 'not JSON' : errorMessage(err),
      });
      return new Map();
    }
  }

  /**
   * Writes the state when it changed since load; returns whether it wrote. The digest is taken
   * first without making the pieces, so a state that did not change (a quiet run's) costs no copy.
   */
  async save(state: RunState, now: Date): Promise<boolean> {
    if (serialise(state, false).digest === this.savedDigest) return false;
    const { pieces, digest } = serialise(state);
    const head = `{"version":${VERSION},"savedAt":${JSON.stringify(now.toISOString())},"certs":`;
    await this.blob.write(Buffer.concat([Buffer.from(head), ...pieces, Buffer.from('}')]));
    this.savedDigest = digest;
    return true;
  }
}
/** Size of the pieces `serialise` gives. */
const PIECE_CHARS = 64 * 1024;

/**
 * The state as the `certs` JSON object, entries in key order, in pieces of about 64 KiB (Buffers,
 * outside the JS heap), with its SHA-256. Never one string of the whole document: at 10 000
 * certificates that was 4.4 MB of string, copied again into the document and its Buffer, and the
 * loaded copy was kept for the whole run to compare with; the digest takes its place. With `keep`
 * false (the digest of a state just loaded) no piece is made or kept.
 */
function serialise(state: RunState, keep = true): { pieces: Buffer[]; digest: string } {
  const hash = createHash('sha256');
  const pieces: Buffer[] = [];
  const flush = (text: string) => {
    if (!keep) {
      hash.update(text);
      return;
    }
    const piece = Buffer.from(text);
    hash.update(piece);
    pieces.push(piece);
  };
  let text = '{';
  let first = true;
  for (const key of [...state.keys()].sort(compareKeys)) {
    text += `${first ? '' : ','}${JSON.stringify(key)}:${JSON.stringify(state.get(key))}`;
    first = false;
    if (text.length >= PIECE_CHARS) {
      flush(text);
      text = '';
    }
  }
  flush(`${text}}`);
  return { pieces, digest: hash.digest('hex') };
}

const STRING_FIELDS = [
  'certTag',
  'stapleTag',
  'lastError',
  'reason',
  'settings',
  'responder',
  'policy',
] as const;
const TIME_FIELDS = [
  'lastFailureAt',
  'maxAgeUntil',
  'thisUpdate',
  'nextUpdate',
  'responderNotAfter',
  'nextDue',
] as const;
const CERT_STATUSES: readonly string[] = ['good', 'revoked', 'unknown'];

/**
 * A state entry as read from the document, every field checked and nothing else kept; or what is
 * wrong with it. The state is a cache that anyone who can write the file or object can change: a
 * field of the wrong type must not reach `run()`, `status` or the status page.
 */
function checkedStateEntry(value: unknown): StateEntry | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const v = value as Record<string, unknown>;
  const failures = v.failures;
  if (typeof failures !== 'number' || !Number.isSafeInteger(failures) || failures < 0)
    return 'failures is not a count';
  const entry: StateEntry = { failures };
  for (const field of STRING_FIELDS) {
    const text = v[field];
    if (text === undefined) continue;
    if (typeof text !== 'string') return `${field} is not a string`;
    entry[field] = text;
  }
  for (const field of TIME_FIELDS) {
    const time = v[field];
    if (time === undefined) continue;
    if (typeof time !== 'string' || Number.isNaN(Date.parse(time))) return `${field} is not a time`;
    entry[field] = time;
  }
  if (v.certStatus !== undefined) {
    if (typeof v.certStatus !== 'string' || !CERT_STATUSES.includes(v.certStatus))
      return 'certStatus is not good, revoked or unknown';
    entry.certStatus = v.certStatus as StateEntry['certStatus'];
  }
  if (v.action !== undefined) {
    if (typeof v.action !== 'string' || !(ACTIONS as readonly string[]).includes(v.action))
      return 'action is not a run action';
    entry.action = v.action as StateEntry['action'];
  }
  if (v.mustStaple !== undefined) {
    if (typeof v.mustStaple !== 'boolean') return 'mustStaple is not a boolean';
    entry.mustStaple = v.mustStaple;
  }
  return entry;
}

/** The state as a file (the CLI's, under $XDG_STATE_HOME/ocsp-renewer/ or --state FILE). */
export function fileStateBlob(file: string): StateBlob {
  return {
    description: file,
    read: () => readOptional(file),
    write: async (body) => {
      await writeFileAtomic(file, body);
    },
  };
}
