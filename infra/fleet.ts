import { ArnFormat, Duration, Names, RemovalPolicy, Stack, TimeZone, type CfnResource } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { EventType, type Bucket } from 'aws-cdk-lib/aws-s3';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Fail,
  ItemBatcher,
  JitterType,
  JsonPath,
  LogLevel,
  OutputType,
  Pass,
  Result,
  ResultWriterV2,
  S3JsonItemReader,
  type IItemReader,
  S3ObjectsItemReader,
  StateMachine,
  TaskInput,
  Transformation,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { STATE_TABLE } from '../lambda/adapters/dynamo-state.js';
import { INLINE_MAX_KEYS_DEFAULT } from '../lambda/aws/due-run-limit.js';
import { RenewerFunction, type StapleLayout } from './renewer-function.js';
import { acknowledge, definedOnly, logicalIdOf } from './cdk-helpers.js';
import { UploadQueueDestination } from './upload-queue-destination.js';

/** Fleet-scale settings (issue 10); every one has a default. */
export interface FleetSettings {
  /** Certificate keys per Distributed Map child (one worker invocation). @default 250 */
  readonly keysPerBatch?: number;
  /**
   * Children running at once. Each child gets an equal share of the per-host limit
   * (`perHostLimit` ÷ this, at least 1), so one responder host sees at most `perHostLimit`
   * requests in flight from a map run (or this many, when it is larger). @default 4
   */
  readonly maxConcurrency?: number;
  /** Requests in flight to one responder host from a whole map run. @default 4 */
  readonly perHostLimit?: number;
  /** Failed children tolerated before the map run fails, in percent. @default 5 */
  readonly toleratedFailurePercentage?: number;
  /** Where the map run writes its results (the child outputs). @default 'reports/' */
  readonly reportsPrefix?: string;
  /** Upload events per worker invocation, and how long SQS gathers them. @default 100, 60 s */
  readonly uploadBatchSize?: number;
  readonly uploadBatchWindow?: Duration;
  /**
   * When the state machine runs unforced over every certificate, catching what events missed
   * (a staple deleted by hand, a lost notification); '' for never. @default 'rate(1 day)'
   */
  readonly reconcileSchedule?: string;
  /**
   * A scheduled due run renews up to this many due certificates in the worker itself; more go to
   * the state machine as a manifest (`<reportsPrefix>manifests/…json`). The worker's 5-minute
   * timeout renews a few thousand at its concurrency. @default 2000
   */
  readonly inlineMaxKeys?: number;
}

export interface RenewerFleetProps extends FleetSettings {
  /** The renewer function: the upload queue's consumer, the map's children, the due run. */
  readonly renewer: RenewerFunction;
  readonly bucket: Bucket;
  readonly layout: StapleLayout;
  readonly certificateSuffixes: readonly string[];
  readonly removalPolicy: 'retain' | 'destroy';
  /** Where the reconcile schedule's undeliverable starts go (the stack's dead-letter queue). */
  readonly deadLetterQueue: IQueue;
}

/** Under the reports prefix: the map runs' result files (`<prefix>map-runs/<map run id>/…`). */
export const MAP_RESULTS_FOLDER = 'map-runs/';
/** Under the reports prefix: the due runs' manifests for the map. */
export const MANIFESTS_FOLDER = 'manifests/';
/** Map results are kept as long as run reports; a manifest a week (its map run is long over). */
export const MAP_RESULT_DAYS = 30;
export const MANIFEST_DAYS = 7;

/**
 * The transient errors of a Lambda invocation that Step Functions reports, retried with backoff
 * and full jitter: AWS's "Handle Lambda service exceptions" list plus the throttle
 * (`Lambda.TooManyRequestsException`, an account's or function's concurrency used up), which
 * would otherwise fail a child and drop its keys for that run.
 */
export const LAMBDA_TRANSIENT_ERRORS = [
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
] as const;

export const FLEET_DEFAULTS = {
  keysPerBatch: 250,
  maxConcurrency: 4,
  perHostLimit: 4,
  toleratedFailurePercentage: 5,
  reportsPrefix: 'reports/',
  uploadBatchSize: 100,
  uploadBatchWindow: Duration.seconds(60),
  reconcileSchedule: 'rate(1 day)',
  inlineMaxKeys: INLINE_MAX_KEYS_DEFAULT,
} as const;

/**
 * The fleet-scale building blocks next to the renewer:
 * - a DynamoDB table with one item per certificate and the sparse, sharded `due` index
 *   (lambda/adapters/dynamo-state.ts), on demand, point-in-time recovery, retained by default;
 * - an upload queue (with its own dead-letter queue) fed by the bucket's notifications for the
 *   certificates prefix, consumed by the worker in batches (partial batch responses);
 * - a Step Functions state machine whose Distributed Map lists the certificates prefix, batches
 *   the keys and invokes the worker with `{"mode":"batch","keys":[…],"force":bool}` per batch,
 *   writes the results under `reports/`, and ends in a summary;
 * - the worker: the renewer function itself (lambda/aws/handler.ts), given the table, the queue
 *   and the state machine here; the map's MaxConcurrency and the queue's batching bound its
 *   fan-out.
 */
export class RenewerFleet extends Construct {
  readonly table: Table;
  readonly worker: RenewerFunction;
  readonly uploadQueue: Queue;
  readonly uploadDeadLetterQueue: Queue;
  readonly stateMachine: StateMachine;
  /** Starts the state machine unforced (reconcileSchedule). */
  readonly reconcileSchedule?: Schedule;
  /** Renews every certificate, however many, through the Distributed Map. */
  readonly forceAllCommand: string;

  constructor(scope: Construct, id: string, props: RenewerFleetProps) {
    super(scope, id);
    const s = { ...FLEET_DEFAULTS, ...definedOnly(props) };
    checkSettings(s);
    const destroy = props.removalPolicy === 'destroy';
    const { bucket, layout } = props;

    this.table = this.makeTable(destroy);
    // The one renewer function (infra/ocsp-renewer.ts) consumes uploads, runs map children and
    // the due run; no reserved concurrency (the map's MaxConcurrency and the queue's batching
    // bound it). It may delete staples (a removed certificate retires its staple), nothing more.
    this.worker = props.renewer;
    this.bindRenewer(bucket, layout);
    ({ queue: this.uploadQueue, deadLetterQueue: this.uploadDeadLetterQueue } = this.makeUploadQueues(
      s,
      props,
    ));
    const { stateMachine, stateMachineName } = this.makeStateMachine(s, props, destroy);
    this.stateMachine = stateMachine;
    this.bindDueRun(s, bucket, stateMachineName);
    this.acknowledgeStateMachine(s, bucket);
    this.reconcileSchedule = this.makeReconcileSchedule(s, props.deadLetterQueue);

    this.forceAllCommand = [
      `aws stepfunctions start-execution --state-machine-arn ${this.stateMachine.stateMachineArn}`,
      `--input '{"force":true}'`,
    ].join(' ');
  }

  /** One item per certificate and the sparse, sharded due index (adapters/dynamo-state.ts). */
  private makeTable(destroy: boolean): Table {
    const table = new Table(this, 'StateTable', {
      partitionKey: { name: STATE_TABLE.partitionKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: destroy ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    table.addGlobalSecondaryIndex({
      indexName: STATE_TABLE.dueIndex,
      partitionKey: { name: STATE_TABLE.dueShard, type: AttributeType.NUMBER },
      sortKey: { name: STATE_TABLE.nextDue, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
    return table;
  }

  /** The renewer's table access and the acknowledgements of its object-prefix grants. */
  private bindRenewer(bucket: Bucket, layout: StapleLayout): void {
    this.worker.addEnvironment('STATE_TABLE', this.table.tableName);
    this.worker.addToRolePolicy(
      new PolicyStatement({
        sid: 'CertificateState',
        actions: [
          'dynamodb:GetItem',
          'dynamodb:BatchGetItem',
          'dynamodb:PutItem',
          'dynamodb:DeleteItem',
          'dynamodb:Query',
          'dynamodb:Scan', // the status page (aws/status-page.ts), at most hourly
        ],
        resources: [this.table.tableArn, `${this.table.tableArn}/index/${STATE_TABLE.dueIndex}`],
      }),
    );
    const bucketArn = `<${logicalIdOf(bucket.node.defaultChild as CfnResource)}.Arn>`;
    const workerPolicy = this.worker.role!.node.tryFindChild('DefaultPolicy')!;
    for (const prefix of [layout.certsPrefix, layout.staplesPrefix, layout.statePrefix]) {
      acknowledge(workerPolicy, `AwsSolutions-IAM5[Resource::${bucketArn}/${prefix}*]`, [
        `The worker works on any object under ${prefix} (one object per certificate); the wildcard`,
        'is an object-key prefix in this bucket only. Delete is granted on staples only.',
      ]);
    }
  }

  /** S3 notifications → the upload queue → the renewer in batches (partial batch responses). */
  private makeUploadQueues(
    s: ResolvedSettings,
    props: RenewerFleetProps,
  ): { queue: Queue; deadLetterQueue: Queue } {
    const { bucket, layout } = props;
    // Uploads: S3 → queue → worker, batched; a failed record is retried alone, then dead-lettered.
    const deadLetterQueue = new Queue(this, 'UploadDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const queue = new Queue(this, 'UploadQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS's advice for event source mappings: six times the function timeout.
      visibilityTimeout: Duration.minutes(30),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 3 },
    });
    for (const event of [EventType.OBJECT_CREATED, EventType.OBJECT_REMOVED]) {
      for (const suffix of props.certificateSuffixes) {
        bucket.addEventNotification(event, new UploadQueueDestination(queue), {
          prefix: layout.certsPrefix,
          suffix,
        });
      }
    }
    this.worker.addEventSource(
      new SqsEventSource(queue, {
        batchSize: s.uploadBatchSize,
        maxBatchingWindow: s.uploadBatchWindow,
        reportBatchItemFailures: true,
        // Two workers at most (SQS's floor): a bulk upload never hits one responder host with
        // more than 2 × the per-host limit (4) requests at once.
        maxConcurrency: 2,
      }),
    );
    return { queue, deadLetterQueue };
  }

  /** The state machine: Defaults, Source, the two Distributed Maps, Summarise; its S3 policy. */
  private makeStateMachine(
    s: ResolvedSettings,
    props: RenewerFleetProps,
    destroy: boolean,
  ): { stateMachine: StateMachine; stateMachineName: string } {
    const { bucket, layout } = props;
    // Full runs: list the certificates, batch the keys, one worker invocation per batch.
    const logGroup = new LogGroup(this, 'StateMachineLogs', {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: destroy ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    // force defaults to false with Choice and Pass states, no intrinsic function (whose literal
    // arguments reserve braces). The input is {"force"} or {"manifest","force"}: nothing else is
    // kept.
    const forceDefault = new Pass(this, 'ForceDefault', {
      comment: 'no force in the input: false',
      result: Result.fromObject({ force: false }),
    });
    const manifestForceDefault = new Pass(this, 'ManifestForceDefault', {
      comment: 'a manifest without force: not forced',
      parameters: { force: false, 'manifest.$': '$.manifest' },
    });
    const badInput = new Fail(this, 'BadInput', {
      error: 'InvalidInput',
      cause: 'force must be true or false',
    });
    const resultsPrefix = `${s.reportsPrefix}${MAP_RESULTS_FOLDER}`;
    const manifestsPrefix = `${s.reportsPrefix}${MANIFESTS_FOLDER}`;
    // Each child's share of the per-host limit, so the children together stay within it.
    const perHostShare = Math.max(1, Math.floor(s.perHostLimit / s.maxConcurrency));
    /** A Distributed Map whose children each invoke the worker with a batch of keys. */
    const batchMap = (
      id: string,
      childId: string,
      comment: string,
      itemReader: IItemReader,
      keys: Record<string, unknown>,
    ) => {
      const child = new LambdaInvoke(this, childId, {
        lambdaFunction: this.worker,
        payload: TaskInput.fromObject({
          mode: 'batch',
          ...keys,
          force: JsonPath.stringAt('$.BatchInput.force'),
          perHostConcurrency: perHostShare,
        }),
        // The batch summary only: the result files stay small.
        resultSelector: { 'summary.$': '$.Payload' },
        retryOnServiceExceptions: false,
      });
      child.addRetry({
        errors: [...LAMBDA_TRANSIENT_ERRORS],
        interval: Duration.seconds(2),
        backoffRate: 2,
        maxAttempts: 8,
        maxDelay: Duration.minutes(2),
        jitterStrategy: JitterType.FULL,
      });
      const map = new DistributedMap(this, id, {
        comment,
        itemReader,
        itemBatcher: new ItemBatcher({
          maxItemsPerBatch: s.keysPerBatch,
          batchInput: { 'force.$': '$.force' },
        }),
        maxConcurrency: s.maxConcurrency,
        toleratedFailurePercentage: s.toleratedFailurePercentage,
        // The children's outputs only (COMPACT), not their inputs: 250 keys each would dwarf them.
        resultWriterV2: new ResultWriterV2({
          bucket,
          prefix: resultsPrefix,
          writerConfig: { outputType: OutputType.JSON, transformation: Transformation.COMPACT },
        }),
        resultPath: '$.map',
      });
      map.itemProcessor(child);
      return map;
    };
    const map = batchMap(
      'RenewAll',
      'RenewBatch',
      'every certificate under the certificates prefix, in batches',
      new S3ObjectsItemReader({ bucket, prefix: layout.certsPrefix }),
      { keys: JsonPath.listAt('$.Items[*].Key'), etags: JsonPath.listAt('$.Items[*].Etag') },
    );
    // A due run too large for one worker: the keys come from its manifest (a JSON array).
    const dueMap = batchMap(
      'RenewDue',
      'RenewDueBatch',
      'the due certificates a due run listed in its manifest, in batches',
      new S3JsonItemReader({ bucket, key: JsonPath.stringAt('$.manifest') }),
      { keys: JsonPath.listAt('$.Items') },
    );
    const summary = new Pass(this, 'Summarise', {
      comment: 'where the results are; counts per child are in the result files',
      parameters: {
        'force.$': '$.force',
        'mapRunArn.$': '$.map.MapRunArn',
        'results.$': '$.map.ResultWriterDetails',
      },
    });
    const source = new Choice(this, 'Source', {
      comment: 'a manifest of due keys (a due run), or the certificates listing (force, reconcile)',
    })
      .when(Condition.isPresent('$.manifest'), dueMap.next(summary))
      .otherwise(map.next(summary));
    const defaults = new Choice(this, 'Defaults', { comment: 'force defaults to false' })
      // A Choice rule over a missing field is a runtime error: IsPresent first.
      .when(Condition.and(Condition.isPresent('$.force'), Condition.isBoolean('$.force')), source)
      .when(Condition.isPresent('$.force'), badInput)
      .when(Condition.isPresent('$.manifest'), manifestForceDefault.next(source))
      .otherwise(forceDefault.next(source));
    // Named, so the worker (whose function the definition names) can be given its ARN without a
    // dependency cycle.
    const stateMachineName = `${Names.uniqueResourceName(this, { maxLength: 60, separator: '-' })}-RenewAll`;
    const stateMachine = new StateMachine(this, 'RenewAllStateMachine', {
      stateMachineName,
      comment:
        'ocsp-renewer: renew every certificate (input {"force": true|false}) or a due manifest ({"manifest": key})',
      definitionBody: DefinitionBody.fromChainable(defaults),
      tracingEnabled: true,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
    });
    // ResultWriter: AWS's documented policy ("IAM policies for using Distributed Map states"),
    // on the results prefix. The results are written by multipart upload, hence the read and the
    // multipart actions. CDK's ResultWriterV2 and S3JsonItemReader grant these on the whole
    // bucket; the two denies below keep the state machine to its results and manifests.
    stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteMapResults',
        actions: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [bucket.arnForObjects(`${resultsPrefix}*`)],
      }),
    );
    stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteMapResultsOnly',
        effect: Effect.DENY,
        actions: ['s3:PutObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        notResources: [bucket.arnForObjects(`${resultsPrefix}*`)],
      }),
    );
    stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadManifestsAndMapResultsOnly',
        effect: Effect.DENY,
        actions: ['s3:GetObject'],
        notResources: [
          bucket.arnForObjects(`${manifestsPrefix}*`),
          bucket.arnForObjects(`${resultsPrefix}*`),
        ],
      }),
    );
    // Map results (every child's summary) and manifests are for reading soon after a run; on a
    // versioned bucket they would otherwise stay for ever.
    bucket.addLifecycleRule({
      id: 'expire-map-results',
      prefix: resultsPrefix,
      expiration: Duration.days(MAP_RESULT_DAYS),
      noncurrentVersionExpiration: Duration.days(1),
    });
    bucket.addLifecycleRule({
      id: 'expire-due-manifests',
      prefix: manifestsPrefix,
      expiration: Duration.days(MANIFEST_DAYS),
      noncurrentVersionExpiration: Duration.days(1),
    });
    return { stateMachine, stateMachineName };
  }

  /** What the due run needs: where manifests and reports go, and this state machine to start. */
  private bindDueRun(s: ResolvedSettings, bucket: Bucket, stateMachineName: string): void {
    const bucketArn = `<${logicalIdOf(bucket.node.defaultChild as CfnResource)}.Arn>`;
    const workerPolicy = this.worker.role!.node.tryFindChild('DefaultPolicy')!;
    // The due run: manifests and run reports under reports/, and the state machine for big sets.
    const stateMachineArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.worker.addEnvironment('REPORTS_PREFIX', s.reportsPrefix);
    this.worker.addEnvironment('STATE_MACHINE_ARN', stateMachineArn);
    this.worker.addEnvironment('INLINE_MAX_KEYS', String(s.inlineMaxKeys));
    this.worker.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteRunReportsAndManifests',
        actions: ['s3:PutObject'],
        resources: [
          bucket.arnForObjects(`${s.reportsPrefix}runs/*`),
          bucket.arnForObjects(`${s.reportsPrefix}manifests/*`),
        ],
      }),
    );
    this.worker.addToRolePolicy(
      new PolicyStatement({
        sid: 'StartDueMapRun',
        actions: ['states:StartExecution'],
        resources: [stateMachineArn],
      }),
    );
    for (const folder of ['runs', 'manifests']) {
      acknowledge(workerPolicy, `AwsSolutions-IAM5[Resource::${bucketArn}/${s.reportsPrefix}${folder}/*]`, [
        `The worker writes one object per run under ${s.reportsPrefix}${folder}/ (PutObject only, no`,
        'read or delete); the wildcard is an object-key prefix in this bucket only.',
      ]);
    }
  }

  /** The state machine's cdk-nag acknowledgements, each with its reason. */
  private acknowledgeStateMachine(s: ResolvedSettings, bucket: Bucket): void {
    const resultsPrefix = `${s.reportsPrefix}${MAP_RESULTS_FOLDER}`;
    const bucketArn = `<${logicalIdOf(bucket.node.defaultChild as CfnResource)}.Arn>`;
    const machinePolicy = this.stateMachine.role.node.tryFindChild('DefaultPolicy')!;
    const workerArn = `<${logicalIdOf(this.worker.node.defaultChild as CfnResource)}.Arn>`;
    acknowledge(machinePolicy, `AwsSolutions-IAM5[Resource::${bucketArn}/${resultsPrefix}*]`, [
      `A map run writes its result files under ${resultsPrefix}<map run id>/ (AWS's documented`,
      'ResultWriter actions); the wildcard is an object-key prefix in this bucket only.',
    ]);
    acknowledge(machinePolicy, `AwsSolutions-IAM5[Resource::${workerArn}:*]`, [
      'CDK’s LambdaInvoke also names the worker’s versions and aliases (<arn>:*); one function only.',
    ]);
    acknowledge(machinePolicy, 'AwsSolutions-IAM5[Resource::*]', [
      'Step Functions delivers logs through CloudWatch Logs log delivery and traces through X-Ray;',
      'neither supports resource-level permissions (CDK’s StateMachine grants them on *).',
    ]);
    const machineName = JSON.stringify({
      'Fn::Select': [
        6,
        { 'Fn::Split': [':', { Ref: logicalIdOf(this.stateMachine.node.defaultChild as CfnResource) }] },
      ],
    });
    for (const execution of [`${machineName}:*`, `${machineName}/*:*`]) {
      acknowledge(
        this.stateMachine.node.findChild('DistributedMapPolicy'),
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${execution}]`,
        [
          'CDK’s DistributedMap lets the state machine describe and stop the executions of its own',
          'map runs (execution:<this state machine>…); no other state machine.',
        ],
      );
    }
    const bucketObjects = `arn:<AWS::Partition>:s3:::<${logicalIdOf(bucket.node.defaultChild as CfnResource)}>/*`;
    acknowledge(machinePolicy, `AwsSolutions-IAM5[Resource::${bucketObjects}]`, [
      `The map run writes its result files under ${resultsPrefix}: CDK's ResultWriterV2 and`,
      'S3JsonItemReader grant on the bucket’s objects; the WriteMapResultsOnly and',
      'ReadManifestsAndMapResultsOnly statements deny everything outside the results and manifests.',
    ]);
  }

  /** The daily reconcile: the state machine unforced over every certificate, dead-lettered. */
  private makeReconcileSchedule(s: ResolvedSettings, deadLetterQueue: IQueue): Schedule | undefined {
    if (s.reconcileSchedule) {
      const role = new Role(this, 'ReconcileScheduleRole', {
        description: 'ocsp-renewer: the reconcile schedule starts the renew-all state machine',
        assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
          conditions: {
            StringEquals: {
              'aws:SourceAccount': Stack.of(this).account,
              'aws:SourceArn': Stack.of(this).formatArn({
                service: 'scheduler',
                resource: 'schedule-group',
                resourceName: 'default',
              }),
            },
          },
        }),
      });
      return new Schedule(this, 'ReconcileSchedule', {
        description: 'ocsp-renewer: renew what is due over every certificate (catches missed events)',
        schedule: ScheduleExpression.expression(s.reconcileSchedule, TimeZone.ETC_UTC),
        target: new StepFunctionsStartExecution(this.stateMachine, {
          role,
          input: ScheduleTargetInput.fromObject({ force: false }),
          retryAttempts: 2,
          deadLetterQueue,
        }),
      });
    }
    return undefined;
  }
}

type ResolvedSettings = Required<FleetSettings>;

function checkSettings(s: ResolvedSettings): void {
  const whole = (name: string, v: number, min: number, max: number) => {
    if (!(Number.isInteger(v) && v >= min && v <= max)) {
      throw new Error(`fleet ${name} must be a whole number from ${min} to ${max}, got ${v}`);
    }
  };
  whole('keysPerBatch', s.keysPerBatch, 1, 1000);
  whole('maxConcurrency', s.maxConcurrency, 1, 10_000);
  whole('perHostLimit', s.perHostLimit, 1, 1_000);
  whole('uploadBatchSize', s.uploadBatchSize, 1, 10_000);
  whole('inlineMaxKeys', s.inlineMaxKeys, 0, 1_000_000);
  if (!(s.toleratedFailurePercentage >= 0 && s.toleratedFailurePercentage <= 100)) {
    throw new Error(`fleet toleratedFailurePercentage must be 0–100, got ${s.toleratedFailurePercentage}`);
  }
  if (s.uploadBatchWindow.toSeconds() > 60) {
    throw new Error('fleet uploadBatchWindow must be at most 60 seconds');
  }
  if (s.reconcileSchedule && !/^(rate|cron)\(.+\)$/.test(s.reconcileSchedule)) {
    throw new Error(`fleet reconcileSchedule must be rate(…) or cron(…), got "${s.reconcileSchedule}"`);
  }
  if (!/^[^/].*\/$/.test(s.reportsPrefix)) {
    throw new Error(`fleet reportsPrefix must be a key prefix ending in "/", got "${s.reportsPrefix}"`);
  }
}
