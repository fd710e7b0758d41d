import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { CertState, RunState } from '../core/run.js';
import { getObject } from './s3.js';

const VERSION = 1;

interface StateDocument {
  version: number;
  savedAt: string;
  certs: Record<string, CertState>;
}

/**
 * The run state as one JSON object in S3 (`state/state.json`): per certificate its ETag, the
 * staple's ETag and validity, the next due time, consecutive failures and the last error. It is a
 * cache: missing or unreadable, it is rebuilt from the certificates and staples by the next run,
 * and a staple whose ETag differs from the recorded one is always read again.
 */
export class S3StateStore {
  private loadedJson: string | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    readonly key: string,
    private readonly log: (event: Record<string, unknown>) => void = () => undefined,
  ) {}

  async load(): Promise<RunState> {
    const obj = await getObject(this.s3, this.bucket, this.key).catch((err: unknown) => {
      this.log({ level: 'warn', msg: 'state unreadable; rebuilding', key: this.key, error: String(err) });
      return undefined;
    });
    if (!obj) return new Map();
    try {
      const doc = JSON.parse(obj.body.toString('utf8')) as StateDocument;
      if (doc.version !== VERSION || typeof doc.certs !== 'object' || doc.certs === null) {
        throw new Error(`unexpected state version ${String(doc.version)}`);
      }
      const state: RunState = new Map(Object.entries(doc.certs).filter(([, v]) => isCertState(v)));
      this.loadedJson = JSON.stringify(Object.fromEntries(state));
      return state;
    } catch (err) {
      this.log({ level: 'warn', msg: 'state corrupt; rebuilding', key: this.key, error: String(err) });
      return new Map();
    }
  }

  /** Writes the state when it changed since load (a quiet run writes nothing). */
  async save(state: RunState, now: Date): Promise<boolean> {
    const certs = Object.fromEntries([...state].sort(([a], [b]) => a.localeCompare(b)));
    const json = JSON.stringify(certs);
    if (json === this.loadedJson) return false;
    const doc: StateDocument = { version: VERSION, savedAt: now.toISOString(), certs };
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key,
        Body: Buffer.from(JSON.stringify(doc)),
        ContentType: 'application/json',
      }),
    );
    this.loadedJson = json;
    return true;
  }
}

function isCertState(value: unknown): value is CertState {
  return typeof value === 'object' && value !== null && typeof (value as CertState).failures === 'number';
}
