import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { CombinedCertificateSource, keyedSource } from '../adapters/combined-source.js';
import { DynamoStateStore } from '../adapters/dynamo-state.js';
import { headObjectTag, makeS3Client, S3KeyedCertificateSource, S3StapleStore } from '../adapters/s3.js';
import { SecretsManagerCertificateSource, type SecretsListing } from '../adapters/secrets-manager.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import { cachedDownload } from '../renew/cached-download.js';
import {
  stapleKeyFor,
  type CertificateObject,
  type CertificateSource,
  type RunReport,
  type RunState,
  type Transport,
} from '../renew/ports.js';
import { run } from '../renew/run.js';
import { configFromEnv, ConfigError, type LambdaConfig } from './config.js';
import type { RunOutput } from './run-output.js';
import { runOptionsFrom, timeLeftOf } from './run-options.js';
import { shortId } from './run-summary.js';

/** What the handler is built from; tests pass their own servers' clients and a fixed clock. */
export interface HandlerDeps {
  env?: NodeJS.ProcessEnv;
  s3?: S3Client;
  dynamodb?: DynamoDBClient;
  /** Starts the state machine (a force of everything, a large due run or prefix). */
  sfn?: SFNClient;
  /** Reads certificates kept in Secrets Manager (SECRETS_PREFIX). */
  secrets?: SecretsManagerClient;
  transport?: Transport;
  clock?: () => Date;
  /**
   * The Powertools Logger and Metrics every line and metric goes through (telemetry.ts
   * renewerLogger, renewerMetrics); the Lambda entry builds them once at module scope. Without
   * them the handler builds its own (on stdout and stderr, as in Lambda).
   */
  logger?: Logger;
  metrics?: Metrics;
}

/** The Logger and Metrics one handler writes through. */
export interface Telemetry {
  logger: Logger;
  metrics: Metrics;
}

export type LambdaContext = Pick<Context, 'getRemainingTimeInMillis'> &
  Partial<Pick<Context, 'awsRequestId'>>;

/** The clients one handler (one Lambda container) keeps, so connections are reused. */
export interface Clients {
  s3?: S3Client;
  dynamodb?: DynamoDBClient;
  sfn?: SFNClient;
  secrets?: SecretsManagerClient;
}

export interface RenewOptions {
  force: boolean;
  dryRun?: boolean;
  /** The state already loaded, with the store that loaded it (its versions). */
  loaded?: { store: DynamoStateStore; state: RunState };
  perHostConcurrency?: number;
  /**
   * Some of these keys may be secrets (SECRETS_PREFIX): each listed secret whose key is no S3
   * certificate is read from Secrets Manager. Off for map children and upload batches, whose keys
   * come from S3 listings and events.
   */
  withSecrets?: boolean;
}

/** One invocation's wiring, shared by every event kind. */
export interface Invocation {
  env: NodeJS.ProcessEnv;
  config: LambdaConfig;
  s3: S3Client;
  staples: S3StapleStore;
  clock: () => Date;
  logger: Logger;
  output: RunOutput;
  /** A new view of the state table (each keeps the versions it read). */
  stateStore(): DynamoStateStore;
  /**
   * The certificates kept in Secrets Manager (SECRETS_PREFIX), keys relative to the prefix and
   * tagged with their LastChangedDate; listed once per invocation, none without the setting.
   */
  secretCertificates(): Promise<CertificateObject[]>;
  /** The keys of the secrets scheduled for deletion, from the same listing. */
  deletedSecrets(): Promise<string[]>;
  /**
   * Whether the certificate (a key relative to the certs prefix) is an S3 object now: one
   * HeadObject (a removal event may be older than a new upload).
   */
  certificateExists(key: string): Promise<boolean>;
  /**
   * Retires a certificate that is gone: its staple deleted, its state item removed (through
   * `store`, the store that loaded the item, when given). What an S3 ObjectRemoved does, and what
   * a due run does for a secret scheduled for deletion.
   */
  retire(key: string, store?: DynamoStateStore): Promise<void>;
  /** Renews these certificates (keys relative to the certs prefix), state in the table. */
  renew(objects: CertificateObject[], options: RenewOptions): Promise<RunReport>;
  /** Starts the state machine (STATE_MACHINE_ARN) with this input; returns the execution's ARN. */
  startExecution(name: string, input: Record<string, unknown>): Promise<string>;
}

export function invocation(
  deps: HandlerDeps,
  clients: Clients,
  { logger, metrics }: Telemetry,
  context: LambdaContext | undefined,
): Invocation {
  const env = deps.env ?? process.env;
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
  const s3Source = (objects: readonly CertificateObject[]) =>
    new S3KeyedCertificateSource(s3, config.bucket, config.certsPrefix, objects, config.naming);
  const secretsSource = config.secretsPrefix
    ? new SecretsManagerCertificateSource(
        (clients.secrets ??= deps.secrets ?? new SecretsManagerClient({})),
        config.secretsPrefix,
      )
    : undefined;
  let secretsListed: Promise<SecretsListing> | undefined;
  const secretsListing = () =>
    (secretsListed ??= secretsSource?.listing() ?? Promise.resolve({ certificates: [], deleted: [] }));
  const secretCertificates = async () => (await secretsListing()).certificates;
  const certificateExists = async (key: string) =>
    (await headObjectTag(s3, config.bucket, config.certsPrefix + key)) !== undefined;

  /**
   * Where each certificate is read: from S3, or from Secrets Manager when the key is a listed
   * secret and no S3 object (S3 first, as the old design's combined source; only the secret keys
   * are probed, with one HeadObject each).
   */
  async function sourceFor(objects: CertificateObject[], withSecrets: boolean): Promise<CertificateSource> {
    if (!secretsSource || !withSecrets) return s3Source(objects);
    const secretKeys = new Set((await secretCertificates()).map((o) => o.key));
    const inS3 = await Promise.all(objects.map((o) => !secretKeys.has(o.key) || certificateExists(o.key)));
    const fromS3 = objects.filter((_, i) => inS3[i]);
    const fromSecrets = objects.filter((_, i) => !inS3[i]);
    if (fromSecrets.length === 0) return s3Source(fromS3);
    return new CombinedCertificateSource([s3Source(fromS3), keyedSource(secretsSource, fromSecrets)]);
  }

  return {
    env,
    config,
    s3,
    staples,
    clock,
    logger,
    output: {
      s3,
      bucket: config.bucket,
      reportsPrefix: config.reportsPrefix,
      id: context?.awsRequestId ?? randomUUID(),
      service: env.METRICS_SERVICE,
      logger,
      metrics,
      now: clock,
    },
    stateStore,
    secretCertificates,
    deletedSecrets: async () => (await secretsListing()).deleted,
    certificateExists,
    async retire(key, store = stateStore()) {
      await staples.delete(stapleKeyFor(key, config.naming));
      await store.remove(key);
    },
    async renew(objects, options) {
      const store = options.loaded?.store ?? stateStore();
      const state = options.loaded?.state ?? (await store.load(objects.map((o) => o.key)));
      const report = await run(
        {
          source: await sourceFor(objects, options.withSecrets === true),
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
