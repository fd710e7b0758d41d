import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type S3Client } from '@aws-sdk/client-s3';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { DynamoStateStore } from '../adapters/dynamo-state.js';
import { makeS3Client, S3KeyedCertificateSource, S3StapleStore } from '../adapters/s3.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import type { CertificateObject, RunReport, RunState, Transport } from '../renew/ports.js';
import { cachedDownload, run } from '../renew/run.js';
import { configFromEnv, ConfigError, type LambdaConfig } from './config.js';
import { writeLogLine } from './log-line.js';
import type { RunOutput } from './run-output.js';
import { runOptionsFrom, timeLeftOf } from './run-options.js';

/** What the handler is built from; tests pass their own servers' clients and a fixed clock. */
export interface HandlerDeps {
  env?: NodeJS.ProcessEnv;
  s3?: S3Client;
  dynamodb?: DynamoDBClient;
  /** Starts the state machine (a force of everything, a large due run or prefix). */
  sfn?: SFNClient;
  transport?: Transport;
  clock?: () => Date;
  /** Where log lines go (JSON, one per call); every line passes writeLogLine's size cap first. */
  log?: (line: string) => void;
}

export type LambdaContext = Pick<Context, 'getRemainingTimeInMillis'> &
  Partial<Pick<Context, 'awsRequestId'>>;

/** The clients one handler (one Lambda container) keeps, so connections are reused. */
export interface Clients {
  s3?: S3Client;
  dynamodb?: DynamoDBClient;
  sfn?: SFNClient;
}

export interface RenewOptions {
  force: boolean;
  dryRun?: boolean;
  /** The state already loaded, with the store that loaded it (its versions). */
  loaded?: { store: DynamoStateStore; state: RunState };
  perHostConcurrency?: number;
}

/** One invocation's wiring, shared by every event kind. */
export interface Invocation {
  env: NodeJS.ProcessEnv;
  config: LambdaConfig;
  s3: S3Client;
  staples: S3StapleStore;
  clock: () => Date;
  log: (line: string) => void;
  output: RunOutput;
  /** A new view of the state table (each keeps the versions it read). */
  stateStore(): DynamoStateStore;
  /** Renews these certificates (keys relative to the certs prefix), state in the table. */
  renew(objects: CertificateObject[], options: RenewOptions): Promise<RunReport>;
  /** Starts the state machine (STATE_MACHINE_ARN) with this input; returns the execution's ARN. */
  startExecution(name: string, input: Record<string, unknown>): Promise<string>;
}

export function invocation(
  deps: HandlerDeps,
  clients: Clients,
  context: LambdaContext | undefined,
): Invocation {
  const env = deps.env ?? process.env;
  // Straight to stdout: with the Lambda's JSON log format, console.log would wrap the line in
  // {"message": …} and CloudWatch would not see the EMF metrics' top-level _aws key.
  const sink = deps.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const log = (line: string) => writeLogLine(sink, line);
  const config = configFromEnv(env);
  const table = env.STATE_TABLE;
  if (!table) throw new ConfigError('STATE_TABLE is not set (the per-certificate state table)');
  const s3 = (clients.s3 ??= deps.s3 ?? makeS3Client(env));
  const dynamodb = (clients.dynamodb ??= deps.dynamodb ?? new DynamoDBClient({}));
  const clock = deps.clock ?? (() => new Date());
  const staples = new S3StapleStore(s3, config.bucket, config.staplesPrefix);
  // Requests are cut at the Lambda's deadline; no certificate starts too late.
  const timeLeft = timeLeftOf(context);
  const downloadIssuer = cachedDownload(httpIssuerDownload(config.http, { timeLeft }));
  const stateStore = () => new DynamoStateStore(dynamodb, table);

  return {
    env,
    config,
    s3,
    staples,
    clock,
    log,
    output: {
      s3,
      bucket: config.bucket,
      reportsPrefix: config.reportsPrefix,
      id: context?.awsRequestId ?? randomUUID(),
      service: env.METRICS_SERVICE,
      log,
      now: clock,
    },
    stateStore,
    async renew(objects, options) {
      const store = options.loaded?.store ?? stateStore();
      const state = options.loaded?.state ?? (await store.load(objects.map((o) => o.key)));
      const report = await run(
        {
          source: new S3KeyedCertificateSource(s3, config.bucket, config.certsPrefix, objects, config.naming),
          store: staples,
          transport: deps.transport ?? httpTransport(config.http),
          downloadIssuer,
          clock,
          state,
          // Each certificate's item is written as it is decided, so an invocation ended midway
          // loses nothing already decided; the save below then writes only what is left.
          stateSink: options.dryRun
            ? undefined
            : {
                recorded: async (key, entry) => {
                  await store.write(key, entry);
                },
              },
        },
        {
          ...runOptionsFrom(config, timeLeft),
          force: options.force,
          dryRun: options.dryRun,
          perHostConcurrency: options.perHostConcurrency ?? config.perHostConcurrency,
        },
      );
      if (!options.dryRun) await store.save(state);
      return report;
    },
    async startExecution(name, input) {
      const machine = env.STATE_MACHINE_ARN;
      if (!machine) throw new ConfigError('STATE_MACHINE_ARN is not set (the renew-all state machine)');
      const sfn = (clients.sfn ??= deps.sfn ?? new SFNClient({}));
      const started = await sfn.send(
        new StartExecutionCommand({ stateMachineArn: machine, name, input: JSON.stringify(input) }),
      );
      return started.executionArn!;
    },
  };
}

/** An execution name: unique per invocation, within Step Functions' characters and 80 characters. */
export function executionName(kind: string, now: Date, id: string): string {
  return `${kind}-${now.toISOString().replace(/[^0-9A-Za-z]/g, '-')}-${shortId(id)}`;
}

export function shortId(id: string): string {
  return id.replace(/[^A-Za-z0-9]/g, '').slice(0, 8);
}
