import { createHash } from 'node:crypto';
import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  type AttributeValue,
  type CreateTableCommandInput,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import pLimit from 'p-limit';
import { mergeCertState, type CertStateStore, type StateEntry, type RunState } from '../renew/ports.js';

/**
 * The table's shape, shared by the adapter, the tests and the CDK construct (infra/fleet.ts):
 * one item per certificate keyed by its key; `version` counts writes; the sparse `due` index
 * holds only items with a real next due time, spread over `dueShard` partitions so no partition
 * is hot, sorted by `nextDue` (ISO 8601, so string order is time order).
 */
export const STATE_TABLE = {
  partitionKey: 'certKey',
  version: 'version',
  dueIndex: 'due',
  dueShard: 'dueShard',
  nextDue: 'nextDue',
  /** Enough spread for 10⁶ items; every due query costs one Query per shard. */
  defaultShards: 8,
} as const;

/** A marker item's key: `#` starts no certificate key (keys are relative paths ending in a suffix). */
function markerKey(name: string): string {
  return `#${name}`;
}

/** A next due time this late means "not until the certificate changes": kept out of the index. */
const NEVER_FROM = Date.parse('9999-01-01T00:00:00.000Z');

/** The CreateTable input (the test server's table; the CDK construct declares the same). */
export function stateTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: STATE_TABLE.partitionKey, AttributeType: 'S' },
      { AttributeName: STATE_TABLE.dueShard, AttributeType: 'N' },
      { AttributeName: STATE_TABLE.nextDue, AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: STATE_TABLE.partitionKey, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: STATE_TABLE.dueIndex,
        KeySchema: [
          { AttributeName: STATE_TABLE.dueShard, KeyType: 'HASH' },
          { AttributeName: STATE_TABLE.nextDue, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

/** Which due-index partition a certificate's item lives in: stable, evenly spread. */
export function dueShardOf(key: string, shards: number): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % shards;
}

interface DynamoStateOptions {
  /** Partitions of the due index (default 8); must match what the items were written with. */
  shards?: number;
  /** Conditional writes in flight at once (default 16). */
  concurrency?: number;
  /** Waits between BatchGetItem retries of UnprocessedKeys (tests pass one that does not wait). */
  sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1) for the retry jitter (default Math.random). */
  random?: () => number;
}

/**
 * BatchGetItem answers part of a request when the table is throttled or a partition is busy
 * (UnprocessedKeys); AWS asks callers to retry those with exponential backoff, not at once. The
 * wait before retry n (1, 2, …) is "full jitter": random in [0, min(cap, base × 2^(n−1))).
 */
export const UNPROCESSED_RETRY = { baseMs: 50, capMs: 5_000, maxRetries: 10 } as const;

export function unprocessedRetryDelay(retry: number, random: () => number): number {
  return Math.floor(
    random() * Math.min(UNPROCESSED_RETRY.capMs, UNPROCESSED_RETRY.baseMs * 2 ** (retry - 1)),
  );
}

/** How often a write is merged and tried again before giving up. */
const MAX_WRITE_ATTEMPTS = 5;

interface Loaded {
  version: number;
  state: StateEntry;
  json: string;
}

/**
 * Per-certificate state in DynamoDB. Every write is conditional on the version read (or on the
 * item not existing); on ConditionalCheckFailed the item is read again (consistently) and the two
 * updates are merged (renew/ports.ts mergeCertState), so overlapping runs lose nothing.
 */
export class DynamoStateStore implements CertStateStore {
  readonly description: string;
  private readonly loaded = new Map<string, Loaded>();
  private readonly shards: number;
  private readonly concurrency: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly ddb: DynamoDBClient,
    private readonly table: string,
    options: DynamoStateOptions = {},
  ) {
    this.description = `dynamodb table ${table}`;
    this.shards = options.shards ?? STATE_TABLE.defaultShards;
    this.concurrency = options.concurrency ?? 16;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
  }

  async load(keys: Iterable<string>): Promise<RunState> {
    const wanted = [...new Set(keys)];
    const out: RunState = new Map();
    for (let i = 0; i < wanted.length; i += 100) {
      let request: Record<string, { Keys: Record<string, AttributeValue>[]; ConsistentRead: boolean }> = {
        [this.table]: {
          Keys: wanted.slice(i, i + 100).map((k) => ({ [STATE_TABLE.partitionKey]: { S: k } })),
          ConsistentRead: true,
        },
      };
      for (let retry = 0; Object.keys(request).length > 0; retry++) {
        if (retry > UNPROCESSED_RETRY.maxRetries) {
          const left = request[this.table]?.Keys.length ?? 0;
          throw new Error(
            `${this.description}: ${left} item(s) still unprocessed after ${UNPROCESSED_RETRY.maxRetries} retries (throttled); the next run reads them again`,
          );
        }
        if (retry > 0) await this.sleep(unprocessedRetryDelay(retry, this.random));
        const res = await this.ddb.send(new BatchGetItemCommand({ RequestItems: request }));
        for (const item of res.Responses?.[this.table] ?? []) this.remember(item, out);
        request = (res.UnprocessedKeys ?? {}) as typeof request;
      }
    }
    return out;
  }

  async loadDue(now: Date): Promise<RunState> {
    const out: RunState = new Map();
    const shards = Array.from({ length: this.shards }, (_, shard) => shard);
    await Promise.all(
      shards.map(async (shard) => {
        let start: Record<string, AttributeValue> | undefined;
        do {
          const res = await this.ddb.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: STATE_TABLE.dueIndex,
              KeyConditionExpression: '#s = :s AND #d <= :now',
              ExpressionAttributeNames: { '#s': STATE_TABLE.dueShard, '#d': STATE_TABLE.nextDue },
              ExpressionAttributeValues: { ':s': { N: String(shard) }, ':now': { S: now.toISOString() } },
              ExclusiveStartKey: start,
            }),
          );
          for (const item of res.Items ?? []) this.remember(item, out);
          start = res.LastEvaluatedKey;
        } while (start);
      }),
    );
    return out;
  }

  async save(state: RunState): Promise<number> {
    const limit = pLimit(this.concurrency);
    const jobs: Promise<boolean>[] = [];
    for (const [key, next] of state) {
      if (this.loaded.get(key)?.json === stableJson(next)) continue;
      jobs.push(
        limit(async () => {
          state.set(key, await this.write(key, next));
          return true;
        }),
      );
    }
    for (const [key, was] of this.loaded) {
      if (!state.has(key)) jobs.push(limit(() => this.delete(key, was.version)));
    }
    return (await Promise.all(jobs)).filter(Boolean).length;
  }

  /**
   * Every certificate's item, page by page (eventually consistent Scan, 1 MB a page), handed to
   * `each` and not kept: memory stays one page whatever the table's size. Marker items are left
   * out. For views (the status page), never for decisions.
   */
  async scan(each: (key: string, entry: StateEntry) => void): Promise<void> {
    let start: Record<string, AttributeValue> | undefined;
    do {
      const res = await this.ddb.send(new ScanCommand({ TableName: this.table, ExclusiveStartKey: start }));
      for (const item of res.Items ?? []) {
        if (item[STATE_TABLE.partitionKey]?.S?.startsWith('#')) continue; // a marker
        const { key, state } = fromItem(item);
        each(key, state);
      }
      start = res.LastEvaluatedKey;
    } while (start);
  }

  /**
   * Whether the table holds the marker item `name` (a key no certificate can have: it starts with
   * `#`). The due run marks the table seeded this way (aws/due-run.ts).
   */
  async hasMarker(name: string): Promise<boolean> {
    return (await this.markerAt(name)) !== undefined;
  }

  /** When the marker item `name` was last put; undefined when there is none. */
  async markerAt(name: string): Promise<Date | undefined> {
    const res = await this.ddb.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { [STATE_TABLE.partitionKey]: { S: markerKey(name) } },
        ConsistentRead: true,
      }),
    );
    if (!res.Item) return undefined;
    const at = res.Item.at?.S;
    return new Date(at ? Date.parse(at) : 0);
  }

  async putMarker(name: string, at: Date): Promise<void> {
    await this.ddb.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { [STATE_TABLE.partitionKey]: { S: markerKey(name) }, at: { S: at.toISOString() } },
      }),
    );
  }

  async remove(key: string): Promise<void> {
    await this.ddb.send(
      new DeleteItemCommand({ TableName: this.table, Key: { [STATE_TABLE.partitionKey]: { S: key } } }),
    );
    this.loaded.delete(key);
  }

  /**
   * Writes one certificate's state conditional on the version loaded; on conflict merges with
   * what is stored now and tries again. Returns what was stored (merged or not).
   */
  async write(key: string, next: StateEntry): Promise<StateEntry> {
    let base = this.loaded.get(key);
    let ours = next;
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const version = (base?.version ?? 0) + 1;
      try {
        await this.ddb.send(
          new PutItemCommand({
            TableName: this.table,
            Item: this.toItem(key, ours, version),
            ...(base
              ? {
                  ConditionExpression: '#v = :v',
                  ExpressionAttributeNames: { '#v': STATE_TABLE.version },
                  ExpressionAttributeValues: { ':v': { N: String(base.version) } },
                }
              : {
                  ConditionExpression: 'attribute_not_exists(#k)',
                  ExpressionAttributeNames: { '#k': STATE_TABLE.partitionKey },
                }),
          }),
        );
        this.loaded.set(key, { version, state: ours, json: stableJson(ours) });
        return ours;
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      }
      const res = await this.ddb.send(
        new GetItemCommand({
          TableName: this.table,
          Key: { [STATE_TABLE.partitionKey]: { S: key } },
          ConsistentRead: true,
        }),
      );
      const theirs = res.Item ? fromItem(res.Item) : undefined;
      if (theirs) ours = mergeCertState(base?.state, ours, theirs.state);
      base = theirs && { ...theirs, json: stableJson(theirs.state) };
    }
    throw new Error(`state of ${key} changed under ${MAX_WRITE_ATTEMPTS} writes in a row; not saved`);
  }

  private async delete(key: string, version: number): Promise<boolean> {
    try {
      await this.ddb.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: { [STATE_TABLE.partitionKey]: { S: key } },
          ConditionExpression: '#v = :v',
          ExpressionAttributeNames: { '#v': STATE_TABLE.version },
          ExpressionAttributeValues: { ':v': { N: String(version) } },
        }),
      );
    } catch (err) {
      // Someone wrote it meanwhile: it is still in use; the next full run decides again.
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      return false;
    } finally {
      this.loaded.delete(key);
    }
    return true;
  }

  private remember(item: Record<string, AttributeValue>, out: RunState): void {
    const { key, version, state } = fromItem(item);
    this.loaded.set(key, { version, state, json: stableJson(state) });
    out.set(key, structuredClone(state));
  }

  private toItem(key: string, state: StateEntry, version: number): Record<string, AttributeValue> {
    return stateItem(key, state, version, this.shards);
  }
}

/** The item for one certificate's state (exported for bulk loads and tests). */
export function stateItem(
  key: string,
  state: StateEntry,
  version: number,
  shards: number = STATE_TABLE.defaultShards,
): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [STATE_TABLE.partitionKey]: { S: key },
    [STATE_TABLE.version]: { N: String(version) },
  };
  for (const [field, value] of Object.entries(state) as [string, unknown][]) {
    if (typeof value === 'string') item[field] = { S: value };
    else if (typeof value === 'number') item[field] = { N: String(value) };
    else if (typeof value === 'boolean') item[field] = { BOOL: value };
  }
  // Sparse index: only items with a real next due time are in it.
  if (state.nextDue && Date.parse(state.nextDue) < NEVER_FROM) {
    item[STATE_TABLE.dueShard] = { N: String(dueShardOf(key, shards)) };
  }
  return item;
}

function fromItem(item: Record<string, AttributeValue>): { key: string; version: number; state: StateEntry } {
  const state: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(item)) {
    if (
      field === STATE_TABLE.partitionKey ||
      field === STATE_TABLE.version ||
      field === STATE_TABLE.dueShard
    ) {
      continue;
    }
    if (value.S !== undefined) state[field] = value.S;
    else if (value.N !== undefined) state[field] = Number(value.N);
    else if (value.BOOL !== undefined) state[field] = value.BOOL;
  }
  return {
    key: item[STATE_TABLE.partitionKey]!.S!,
    version: Number(item[STATE_TABLE.version]!.N),
    state: { ...(state as Partial<StateEntry>), failures: Number(state.failures ?? 0) },
  };
}

function stableJson(state: StateEntry): string {
  return JSON.stringify(Object.fromEntries(Object.entries(state).sort(([a], [b]) => a.localeCompare(b))));
}

/**
 * Every certificate's state in a deployed stack's table, for `status --state dynamodb:<table>`:
 * one Scan, paged (a view, never a decision). The client takes the region, credentials and
 * endpoint (AWS_ENDPOINT_URL_DYNAMODB) from the standard AWS settings.
 */
export async function readStateTable(table: string, ddb = stateTableClient(table)): Promise<RunState> {
  const state: RunState = new Map();
  try {
    await new DynamoStateStore(ddb, table).scan((key, entry) => state.set(key, entry));
  } finally {
    ddb.destroy();
  }
  return state;
}

/**
 * A client for `table`: a table's ARN (arn:aws:dynamodb:<region>:<account>:table/<name>) names its
 * region, which wins over the configured one; a bare name takes the configured region.
 */
export function stateTableClient(table: string): DynamoDBClient {
  const region = /^arn:[^:]+:dynamodb:([^:]+):/.exec(table)?.[1];
  return new DynamoDBClient(region ? { region } : {});
}
