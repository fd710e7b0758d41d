/**
 * Per-certificate state in DynamoDB (lambda/adapters/dynamo-state.ts) against dynalite on
 * loopback: conditional writes with merge on conflict, the sparse sharded due index, retiring.
 */
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  GetItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dueShardOf,
  DynamoStateStore,
  STATE_TABLE,
  stateItem,
  stateTableDefinition,
  UNPROCESSED_RETRY,
  unprocessedRetryDelay,
} from '../lambda/adapters/dynamo-state.js';
import { countRequests } from './helpers/count-requests.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import { mergeCertState, type StateEntry, type RunState } from '../lambda/renew/ports.js';

const T0 = new Date('2026-11-30T12:00:00.000Z');
const at = (hours: number) => new Date(T0.getTime() + hours * 3_600_000).toISOString();
const NEVER = '9999-12-31T00:00:00.000Z';

let dynamo: DynamoServer;
let client: DynamoDBClient;
let tables = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
  client = dynamo.client();
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await dynamo?.stop();
});

async function newTable(): Promise<string> {
  const name = `state-${++tables}`;
  await dynamo.createTable(stateTableDefinition(name));
  return name;
}

async function stored(table: string, key: string) {
  const res = await client.send(
    new GetItemCommand({
      TableName: table,
      Key: { [STATE_TABLE.partitionKey]: { S: key } },
      ConsistentRead: true,
    }),
  );
  return res.Item;
}

const failed = (state: StateEntry | undefined, when: string, error: string): StateEntry => ({
  ...(state ?? { failures: 0 }),
  failures: (state?.failures ?? 0) + 1,
  lastFailureAt: when,
  lastError: error,
  action: 'failed',
});

describe('mergeCertState', () => {
  const base: StateEntry = {
    failures: 2,
    thisUpdate: at(-30),
    nextDue: at(1),
    lastFailureAt: at(-3),
    lastError: 'x',
  };
  it.each<[string, StateEntry, StateEntry, Partial<StateEntry>]>([
    [
      'should add both writers failures since the base',
      failed(base, at(-1), 'ours'),
      failed(base, at(-2), 'theirs'),
      { failures: 4, lastFailureAt: at(-1), lastError: 'ours' },
    ],
    [
      'should keep a concurrent failure after our success reset the ones we saw',
      { ...base, failures: 0, thisUpdate: at(-1), action: 'renewed' },
      failed(base, at(-2), 'theirs'),
      { failures: 1, thisUpdate: at(-1), action: 'renewed' },
    ],
    [
      'should keep the newer staple facts, whoever wrote last',
      { ...base, failures: 0, thisUpdate: at(-5), stapleTag: '"old"', nextDue: at(10) },
      { ...base, failures: 0, thisUpdate: at(-1), stapleTag: '"new"', nextDue: at(14) },
      { thisUpdate: at(-1), stapleTag: '"new"', nextDue: at(10), failures: 0 },
    ],
  ])('%s', (_name, ours, theirs, want) => {
    expect(mergeCertState(base, ours, theirs)).toMatchObject(want);
  });
});

describe('DynamoStateStore', () => {
  it('should keep both failure counts when two runs update one certificate at once', async () => {
    const table = await newTable();
    const seed = new DynamoStateStore(client, table);
    await seed.save(new Map([['a.pem', { failures: 1, lastFailureAt: at(-5), lastError: 'first' }]]));

    const clientB = dynamo.client();
    const counterB = countRequests(clientB);
    const runA = new DynamoStateStore(client, table);
    const runB = new DynamoStateStore(clientB, table);
    const stateA = await runA.load(['a.pem']);
    const stateB = await runB.load(['a.pem']);
    stateA.set('a.pem', failed(stateA.get('a.pem'), at(-2), 'A: responder 503'));
    stateB.set('a.pem', failed(stateB.get('a.pem'), at(-1), 'B: timeout'));
    expect(await runA.save(stateA)).toBe(1);
    counterB.reset();
    expect(await runB.save(stateB)).toBe(1);

    // B's write was refused (version 2 ≠ 1), re-read, merged, and written as version 3.
    expect(counterB.byCommand).toEqual({ PutItemCommand: 2, GetItemCommand: 1 });
    expect(stateB.get('a.pem')).toMatchObject({
      failures: 3,
      lastError: 'B: timeout',
      lastFailureAt: at(-1),
    });
    const item = await stored(table, 'a.pem');
    expect(item?.failures).toEqual({ N: '3' });
    expect(item?.version).toEqual({ N: '3' });
    clientB.destroy();
  });

  it('should keep both failures when two runs create the same item', async () => {
    const table = await newTable();
    const runA = new DynamoStateStore(client, table);
    const runB = new DynamoStateStore(client, table);
    const [stateA, stateB] = await Promise.all([runA.load(['new.pem']), runB.load(['new.pem'])]);
    expect(stateA.size + stateB.size).toBe(0);
    stateA.set('new.pem', failed(undefined, at(-2), 'A'));
    stateB.set('new.pem', failed(undefined, at(-1), 'B'));
    await runA.save(stateA);
    await runB.save(stateB);
    expect((await new DynamoStateStore(client, table).load(['new.pem'])).get('new.pem')).toMatchObject({
      failures: 2,
      lastError: 'B',
    });
  });

  it('should keep the newer staple facts when the older writer saves last', async () => {
    const table = await newTable();
    await new DynamoStateStore(client, table).save(
      new Map([['s.pem', { failures: 0, thisUpdate: at(-30) }]]),
    );
    const runA = new DynamoStateStore(client, table);
    const runB = new DynamoStateStore(client, table);
    const stateA = await runA.load(['s.pem']);
    const stateB = await runB.load(['s.pem']);
    stateA.set('s.pem', { failures: 0, thisUpdate: at(-1), stapleTag: '"newer"', nextDue: at(11) });
    stateB.set('s.pem', { failures: 0, thisUpdate: at(-2), stapleTag: '"older"', nextDue: at(10) });
    await runA.save(stateA);
    await runB.save(stateB);
    const item = await stored(table, 's.pem');
    expect(item?.thisUpdate).toEqual({ S: at(-1) });
    expect(item?.stapleTag).toEqual({ S: '"newer"' });
  });

  it('should write nothing when nothing changed, and delete the certificates that are gone', async () => {
    const table = await newTable();
    await new DynamoStateStore(client, table).save(
      new Map([
        ['keep.pem', { failures: 0, nextDue: at(5) }],
        ['gone.pem', { failures: 0, nextDue: at(5) }],
      ]),
    );
    const store = new DynamoStateStore(client, table);
    const state = await store.load(['keep.pem', 'gone.pem', 'never-was.pem']);
    expect([...state.keys()].sort()).toEqual(['gone.pem', 'keep.pem']);
    expect(await store.save(state)).toBe(0);
    state.delete('gone.pem');
    expect(await store.save(state)).toBe(1);
    expect(await stored(table, 'gone.pem')).toBeUndefined();
    await store.remove('keep.pem');
    expect(await stored(table, 'keep.pem')).toBeUndefined();
  });

  it('should read only the due certificates of 10 000, in one query per shard', async () => {
    const table = await newTable();
    const N = 10_000;
    const due = new Set(['c00017.pem', 'c01234.pem', 'c05000.pem', 'c07777.pem', 'c09999.pem']);
    const items = Array.from({ length: N }, (_, i) => {
      const key = `c${String(i).padStart(5, '0')}.pem`;
      // Due ones: up to an hour ago. Others: not due for a day, or never (skipped), or unknown.
      const nextDue = due.has(key)
        ? at(-(i % 60) / 60)
        : i % 10 === 0
          ? NEVER
          : i % 10 === 1
            ? undefined
            : at(24);
      return stateItem(key, { failures: 0, ...(nextDue ? { nextDue } : {}) }, 1);
    });
    for (let i = 0; i < N; i += 25 * 8) {
      await Promise.all(
        Array.from({ length: 8 }, (_, j) => items.slice(i + j * 25, i + (j + 1) * 25))
          .filter((batch) => batch.length > 0)
          .map((batch) =>
            client.send(
              new BatchWriteItemCommand({
                RequestItems: { [table]: batch.map((Item) => ({ PutRequest: { Item } })) },
              }),
            ),
          ),
      );
    }
    const counted = dynamo.client();
    const counter = countRequests(counted);
    const store = new DynamoStateStore(counted, table);
    const state: RunState = await store.loadDue(new Date(T0));
    expect([...state.keys()].sort()).toEqual([...due].sort());
    expect(counter.byCommand).toEqual({ QueryCommand: STATE_TABLE.defaultShards });

    // Deciding them writes one item each: a constant plus one request per due certificate.
    for (const [key, entry] of state) state.set(key, { ...entry, nextDue: at(12), action: 'renewed' });
    counter.reset();
    expect(await store.save(state)).toBe(due.size);
    expect(counter.byCommand).toEqual({ PutItemCommand: due.size });
    counter.reset();
    expect((await store.loadDue(new Date(T0))).size).toBe(0);
    expect(counter.total).toBe(STATE_TABLE.defaultShards);
    counted.destroy();
  }, 300_000);

  it('should spread keys over every shard', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8_000; i++) counts[dueShardOf(`host-${i}.example.pem`, 8)]!++;
    for (const n of counts) expect(n).toBeGreaterThan(850);
  });
});

describe('DynamoStateStore.load under throttling (UnprocessedKeys)', () => {
  /** The real client, except that BatchGetItem answers only `answered` keys for `partial` calls. */
  function throttled(partial: number, answered = 1) {
    const calls: number[] = [];
    const send = async (command: unknown) => {
      if (command instanceof BatchGetItemCommand) {
        const request = command.input.RequestItems!;
        const [table, { Keys = [], ...rest }] = Object.entries(request)[0]!;
        calls.push(Keys.length);
        if (calls.length <= partial && Keys.length > answered) {
          const res =
            answered > 0
              ? await client.send(
                  new BatchGetItemCommand({
                    RequestItems: { [table]: { ...rest, Keys: Keys.slice(0, answered) } },
                  }),
                )
              : {};
          return { ...res, UnprocessedKeys: { [table]: { ...rest, Keys: Keys.slice(answered) } } };
        }
      }
      return client.send(command as BatchGetItemCommand);
    };
    return { ddb: { send } as unknown as DynamoDBClient, calls };
  }

  it('should retry UnprocessedKeys with exponential backoff and full jitter, and read every item', async () => {
    const table = await newTable();
    const keys = ['a.pem', 'b.pem', 'c.pem', 'd.pem'];
    const writer = new DynamoStateStore(client, table);
    for (const key of keys) await writer.write(key, { failures: 2, nextDue: at(1) });

    const { ddb, calls } = throttled(3);
    const waits: number[] = [];
    const store = new DynamoStateStore(ddb, table, {
      sleep: async (ms) => void waits.push(ms),
      random: () => 0.999,
    });
    const state = await store.load(keys);

    expect([...state.keys()].sort()).toEqual(keys);
    expect(state.get('c.pem')).toMatchObject({ failures: 2 });
    // 4 keys, one answered per throttled call: 4, 3, 2 asked, then the last one in full.
    expect(calls).toEqual([4, 3, 2, 1]);
    // No wait before the first request; then ceilings of 50, 100, 200 ms (× random 0.999).
    expect(waits).toEqual([49, 99, 199]);
  });

  it('should wait no longer than the cap however many retries, and give up naming the table', async () => {
    expect(unprocessedRetryDelay(30, () => 0.5)).toBe(UNPROCESSED_RETRY.capMs / 2);
    const table = await newTable();
    const keys = ['x.pem', 'y.pem'];
    const { ddb } = throttled(Number.POSITIVE_INFINITY, 0);
    const waits: number[] = [];
    const store = new DynamoStateStore(ddb, table, { sleep: async (ms) => void waits.push(ms) });
    await expect(store.load(keys)).rejects.toThrow(
      `dynamodb table ${table}: 2 item(s) still unprocessed after ${UNPROCESSED_RETRY.maxRetries} retries (throttled); the next run reads them again`,
    );
    expect(waits).toHaveLength(UNPROCESSED_RETRY.maxRetries);
    expect(Math.max(...waits)).toBeLessThanOrEqual(UNPROCESSED_RETRY.capMs);
  });
});
