import {
  Annotations,
  ArnFormat,
  Duration,
  RemovalPolicy,
  SecretValue,
  Stack,
  TimeZone,
  type CfnResource,
} from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  Color,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  LogQueryWidget,
  MathExpression,
  Metric,
  Stats,
  TextWidget,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AccessKey, ManagedPolicy, PolicyStatement, Role, ServicePrincipal, User } from 'aws-cdk-lib/aws-iam';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge, definedOnly, logicalIdOf } from './cdk-helpers.js';
import { RenewerFleet, type FleetSettings } from './fleet.js';
import { RenewerFunction } from './renewer-function.js';
import { scheduleIntervalMinutes } from './schedule-interval.js';

export type HostAccess = 'policy' | 'policy-and-user' | 'none';

/** The renewer's settings; the same names are the context keys of cdk.json (`-c name=value`). */
export interface OcspRenewerProps {
  /** Where certificates are uploaded. @default 'certs/' */
  readonly certsPrefix?: string;
  /** Where staples are written. @default 'staples/' */
  readonly staplesPrefix?: string;
  /**
   * Where the old design kept its run state (`state.json`): the first run reads it once, to seed
   * the state table with its failure counts and next due times. @default 'state/'
   */
  readonly statePrefix?: string;
  /** An EventBridge Scheduler `rate(…)` or daily `cron(…)` expression. @default 'rate(15 minutes)' */
  readonly schedule?: string;
  /** The IANA time zone of a `cron(…)` schedule. @default 'UTC' */
  readonly timeZone?: string;
  /** What to do with a `revoked` response. @default 'publish' */
  readonly onRevoked?: 'publish' | 'withhold';
  /** An address subscribed to the alarm topic. @default - none (subscribe later) */
  readonly alarmEmail?: string;
  /** Also read certificates from the secrets whose name starts with this. @default - none */
  readonly secretsPrefix?: string;
  /** A managed policy that reads the staples, optionally with an IAM user and key. @default 'policy' */
  readonly hostAccess?: HostAccess;
  /** `destroy` also empties the bucket on `cdk destroy`. @default 'retain' */
  readonly removalPolicy?: 'retain' | 'destroy';
  /** Alarm when the least validity left over all staples falls below this. @default 24 */
  readonly validityAlarmHours?: number;
  /**
   * Reserved concurrency; 0 reserves none. Conditional writes (staples, state items) make
   * overlapping invocations safe, so none is needed; set one to keep the renewer from taking the
   * account's unreserved concurrency (docs/aws.md). @default 0
   */
  readonly reservedConcurrency?: number;
  /**
   * The Distributed Map, upload queue and reconcile settings (infra/fleet.ts). The state table,
   * upload queue and state machine are always deployed: `fleet` is no longer a switch (`true` or
   * `{}` is accepted for a release, with a warning). @default - FLEET_DEFAULTS
   */
  readonly fleet?: FleetSettings | boolean;
}

/** The defaults, one place: cdk.json's context carries the same values. */
export const OCSP_RENEWER_DEFAULTS = {
  certsPrefix: 'certs/',
  staplesPrefix: 'staples/',
  statePrefix: 'state/',
  schedule: 'rate(15 minutes)',
  timeZone: 'UTC',
  onRevoked: 'publish',
  hostAccess: 'policy',
  removalPolicy: 'retain',
  validityAlarmHours: 24,
  reservedConcurrency: 0,
} as const satisfies OcspRenewerProps;

/** The certificate suffixes the handler reads (CERT_EXTENSIONS' default); one notification each. */
export const CERTIFICATE_SUFFIXES = ['.pem', '.crt', '.cert'] as const;

/** The namespace and dimension of the handler's EMF metrics (lambda/aws/run-output.ts `emfMetrics`). */
const METRICS_NAMESPACE = 'OcspRenewer';

/** Where the function writes its HTML status page (lambda/report/status-page.ts). */
export const STATUS_PAGE_KEY = 'reports/status.html';

/** Each run's full report is `reports/runs/<startedAt>-<id>.json`, kept this many days. */
export const RUN_REPORT_DAYS = 30;

/** The NearTimeout alarm fires when a run takes this share of the function's timeout. */
export const NEAR_TIMEOUT_SHARE = 0.8;

/**
 * ocsp-renewer, embeddable in any stack: a private bucket for certificates, staples and state; the
 * renewer function, run by an EventBridge Scheduler schedule and on every certificate upload; a
 * dead-letter queue for runs that could not be delivered or failed; alarms on an SNS topic; and a
 * managed policy for the hosts that pull staples.
 */
export class OcspRenewer extends Construct {
  readonly bucket: Bucket;
  readonly function: RenewerFunction;
  readonly deadLetterQueue: Queue;
  readonly schedule: Schedule;
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[] = [];
  /** Renewals per run, least validity, run duration, alarm states and the last failures. */
  readonly dashboard: Dashboard;
  /** Reads the staples: attach it to instance roles or IAM Roles Anywhere roles. */
  readonly hostPolicy?: ManagedPolicy;
  /** With hostAccess 'policy-and-user': the user whose key hosts outside AWS use. */
  readonly hostUser?: User;
  /** With hostAccess 'policy-and-user': `{"accessKeyId": …, "secretAccessKey": …}`. */
  readonly hostUserSecret?: Secret;
  /** Renews every certificate now. */
  readonly forceAllCommand: string;
  /** The environment of host/pull-staples.sh. */
  readonly pullScriptSettings: string;
  /** Prints a presigned URL of the status page (AWS CLI v2). */
  readonly statusPageCommand: string;
  /** The state table, upload queue and state machine. */
  readonly fleet: RenewerFleet;

  constructor(scope: Construct, id: string, props: OcspRenewerProps = {}) {
    super(scope, id);
    const p: ResolvedProps = { ...OCSP_RENEWER_DEFAULTS, ...definedOnly(props, true) };
    checkProps(p);
    const intervalMinutes = scheduleIntervalMinutes(p.schedule);
    if (intervalMinutes > 24 * 60) {
      throw new Error(`schedule ${p.schedule}: the renewer must run at least once a day`);
    }
    const destroy = p.removalPolicy === 'destroy';
    const stack = Stack.of(this);

    this.bucket = this.makeBucket(p, destroy);
    if (props.fleet !== undefined) {
      Annotations.of(this).addWarningV2(
        'ocsp-renewer:fleet-ignored',
        'fleet is no longer a switch: the state table, upload queue and state machine are always deployed. Remove -c fleet=… / the fleet prop (its settings, when given as an object, still apply).',
      );
    }
    // One metrics dimension per deployment, so two renewers in one account (staging and
    // production, say) never share, or silence, each other's alarms.
    const metricsService = `ocsp-renewer/${stack.stackName}/${this.node.id}`;
    this.function = this.makeFunction(p, destroy, this.bucket, metricsService);
    this.deadLetterQueue = this.makeDeadLetterQueue();
    // A run fails only as a whole (bad configuration, S3 or DynamoDB unreachable); retries then
    // recover it. Throttles wait in the async queue, up to maxEventAge, and are no retries.
    this.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      onFailure: new SqsDestination(this.deadLetterQueue),
    });

    this.fleet = new RenewerFleet(this, 'Fleet', {
      ...(typeof p.fleet === 'object' ? p.fleet : {}),
      renewer: this.function,
      bucket: this.bucket,
      layout: layoutOf(p),
      certificateSuffixes: CERTIFICATE_SUFFIXES,
      removalPolicy: p.removalPolicy,
      deadLetterQueue: this.deadLetterQueue,
    });

    this.schedule = this.makeSchedule(p);
    // A new or replaced certificate gets its staple now, through the upload queue (infra/fleet.ts).
    acknowledgeBucketNotificationsHandler(stack);

    this.alarmTopic = this.makeAlarmTopic(p);
    const metric = this.addAlarms(p, intervalMinutes, metricsService);
    ({
      hostPolicy: this.hostPolicy,
      hostUser: this.hostUser,
      hostUserSecret: this.hostUserSecret,
    } = this.makeHostAccess(p));

    // Every certificate goes through the Distributed Map; `aws lambda invoke` with
    // {"mode":"force"} still works on the renewer function (FunctionName output).
    this.forceAllCommand = this.fleet.forceAllCommand;
    this.statusPageCommand = `aws s3 presign s3://${this.bucket.bucketName}/${STATUS_PAGE_KEY} --expires-in 3600`;
    this.dashboard = this.makeDashboard(metric, p.validityAlarmHours, intervalMinutes);
    this.pullScriptSettings = `OCSP_BUCKET=${this.bucket.bucketName} OCSP_PREFIX=${p.staplesPrefix} AWS_REGION=${stack.region}`;
  }

  /** The private bucket: certificates, staples, reports (retained unless `removalPolicy` destroy). */
  private makeBucket(p: ResolvedProps, destroy: boolean): Bucket {
    const bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.S3_MANAGED,
      versioned: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          // Replaced staples and certificates stay recoverable for a month.
          id: 'expire-replaced-versions',
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
          expiredObjectDeleteMarker: true,
        },
        {
          // One report object per run (~300 B a certificate): kept a month, and gone a day later.
          id: 'expire-run-reports',
          prefix: `${STATUS_PAGE_KEY.slice(0, STATUS_PAGE_KEY.lastIndexOf('/') + 1)}runs/`,
          expiration: Duration.days(RUN_REPORT_DAYS),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          // The state is a cache rewritten by most runs (~4 MB for 10 000 certificates): a month of
          // its old versions would be gigabytes. S3 honours the shorter of overlapping expirations.
          id: 'expire-replaced-state',
          prefix: p.statePrefix,
          noncurrentVersionExpiration: Duration.days(1),
        },
      ],
      removalPolicy: destroy ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      autoDeleteObjects: destroy,
    });
    acknowledge(bucket, 'AwsSolutions-S1', [
      'Server access logs would need a second bucket for a bucket that holds public certificates and',
      'OCSP responses; every write is the renewer (logged in its run report) or an upload by the',
      'operator. Enable CloudTrail S3 data events on this bucket if an access trail is required.',
    ]);
    return bucket;
  }

  /** The one renewer function, bound to the bucket, with its cdk-nag acknowledgements. */
  private makeFunction(
    p: ResolvedProps,
    destroy: boolean,
    bucket: Bucket,
    metricsService: string,
  ): RenewerFunction {
    const fn = new RenewerFunction(this, 'Function', {
      reservedConcurrentExecutions: p.reservedConcurrency > 0 ? p.reservedConcurrency : undefined,
      logGroupRemovalPolicy: destroy ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    fn.bindStaples(bucket, layoutOf(p));
    fn.addEnvironment('ON_REVOKED', p.onRevoked);
    fn.addEnvironment('METRICS_SERVICE', metricsService);
    if (p.secretsPrefix) fn.bindSecrets(p.secretsPrefix);
    fn.bindStatusPage(bucket, STATUS_PAGE_KEY);
    const bucketArn = `<${logicalIdOf(bucket.node.defaultChild as CfnResource)}.Arn>`;
    const renewerPolicy = fn.role!.node.tryFindChild('DefaultPolicy')!;
    const reportsPrefix = STATUS_PAGE_KEY.slice(0, STATUS_PAGE_KEY.lastIndexOf('/') + 1);
    for (const prefix of [p.certsPrefix, p.staplesPrefix, p.statePrefix, reportsPrefix]) {
      acknowledge(renewerPolicy, `AwsSolutions-IAM5[Resource::${bucketArn}/${prefix}*]`, [
        `The renewer works on every object under ${prefix} (one object per certificate, named by`,
        'the operator); the wildcard is an object-key prefix in this bucket only, with GetObject',
        '(and PutObject for staples and the status page; DeleteObject for staples only, to withhold a revoked',
        "certificate's staple), never a write or delete of a certificate or of the old state object.",
      ]);
    }
    if (p.secretsPrefix) {
      const secretArn = `arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${p.secretsPrefix}*`;
      acknowledge(renewerPolicy, `AwsSolutions-IAM5[Resource::${secretArn}]`, [
        `Certificates are every secret whose name starts with ${p.secretsPrefix}; GetSecretValue is`,
        'limited to that name prefix (the trailing * also covers the random suffix of secret ARNs).',
      ]);
      acknowledge(renewerPolicy, 'AwsSolutions-IAM5[Resource::*]', [
        'secretsmanager:ListSecrets supports no resource-level permissions; the statement holds only',
        'that action, and secret values stay limited to the prefix.',
      ]);
    }
    return fn;
  }

  /** The dead-letter queue of the schedules and of asynchronous invocations. */
  private makeDeadLetterQueue(): Queue {
    const queue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(queue, 'AwsSolutions-SQS3', [
      'This queue is the dead-letter queue: of the schedule and of the function’s asynchronous',
      'invocations. A dead-letter queue of its own would only move the problem; its depth alarms.',
    ]);
    return queue;
  }

  /** The due run's schedule, with a role of its own. */
  private makeSchedule(p: ResolvedProps): Schedule {
    const stack = Stack.of(this);
    // The schedule's own role (not CDK's stack-wide one), trusted only by this account's default
    // schedule group; LambdaInvoke grants it InvokeFunction and SendMessage to the queue. The
    // schedule runs the due path: the function reads the due index and renews only what is due
    // (inline, or through the state machine when there is much), so a scheduled run's cost
    // follows what is due, not the number of certificates.
    const scheduleRole = new Role(this, 'ScheduleRole', {
      description: 'ocsp-renewer: the schedule invokes the renewer function (due run)',
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: {
            'aws:SourceAccount': stack.account,
            'aws:SourceArn': stack.formatArn({
              service: 'scheduler',
              resource: 'schedule-group',
              resourceName: 'default',
            }),
          },
        },
      }),
    });
    const schedule = new Schedule(this, 'Schedule', {
      description: 'ocsp-renewer: renew the staples that are due',
      schedule: ScheduleExpression.expression(p.schedule, TimeZone.of(p.timeZone)),
      target: new LambdaInvoke(this.function, {
        role: scheduleRole,
        input: ScheduleTargetInput.fromObject({ mode: 'due' }),
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
        deadLetterQueue: this.deadLetterQueue,
      }),
    });

    const functionArn = `<${logicalIdOf(this.function.node.defaultChild as CfnResource)}.Arn>`;
    acknowledge(
      scheduleRole.node.findChild('DefaultPolicy'),
      `AwsSolutions-IAM5[Resource::${functionArn}:*]`,
      [
        'CDK’s grantInvoke also names the function’s versions and aliases (<arn>:*); the wildcard',
        'covers qualifiers of this one function only.',
      ],
    );
    return schedule;
  }

  /** The alarm topic (TLS only), CloudWatch allowed by name, `alarmEmail` subscribed. */
  private makeAlarmTopic(p: ResolvedProps): Topic {
    const stack = Stack.of(this);
    const topic = new Topic(this, 'AlarmTopic', {
      displayName: 'ocsp-renewer alarms',
      enforceSSL: true,
    });
    // The topic policy replaces SNS's default one, so CloudWatch is allowed by name.
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );
    if (p.alarmEmail) topic.addSubscription(new EmailSubscription(p.alarmEmail));
    return topic;
  }

  /** The ten alarms (each on the topic); returns the renewer's metric maker for the dashboard. */
  private addAlarms(p: ResolvedProps, intervalMinutes: number, metricsService: string): MetricOf {
    const hour = Duration.hours(1);
    const metric = (metricName: string, statistic: string, period: Duration) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { Service: metricsService },
        statistic,
        period,
      });
    this.addAlarm('Errors', {
      metric: this.function.metricErrors({ period: Duration.minutes(5), statistic: Stats.SUM }),
      threshold: 1,
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      description: 'A renewer run failed as a whole (configuration, S3 or Secrets Manager); see its log.',
    });
    {
      this.addDeadLetterAlarm(
        'UploadDeadLetters',
        this.fleet.uploadDeadLetterQueue,
        'An upload notification failed three times and was dead-lettered: its certificate waits for the reconcile; read the upload dead-letter queue.',
      );
      const machine = this.fleet.stateMachine;
      this.addAlarm('MapRunsFailed', {
        metric: new MathExpression({
          expression: 'FILL(failed, 0) + FILL(timedOut, 0)',
          usingMetrics: {
            failed: machine.metricFailed({ period: Duration.minutes(5), statistic: Stats.SUM }),
            timedOut: machine.metricTimedOut({ period: Duration.minutes(5), statistic: Stats.SUM }),
          },
          period: Duration.minutes(5),
          label: 'failed or timed-out executions',
        }),
        threshold: 1,
        comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        missing: TreatMissingData.NOT_BREACHING,
        description:
          'A state machine execution (force, reconcile or a large due run) failed or timed out; see its execution history and the map run.',
      });
    }
    this.addDeadLetterAlarm(
      'DeadLetters',
      this.deadLetterQueue,
      'A scheduled or asynchronous run was dropped after its retries; read the dead-letter queue.',
    );
    this.addAlarm('LeastValidity', {
      metric: metric('LeastValidityHours', Stats.MINIMUM, hour),
      threshold: p.validityAlarmHours,
      comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      description: `A staple has less than ${p.validityAlarmHours} h of validity left: its renewals are failing (see the run report).`,
    });
    this.addAlarm('Revoked', {
      metric: metric('Revoked', Stats.MAXIMUM, hour),
      threshold: 1,
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      description: 'A responder reports a certificate REVOKED (see the run report): replace it.',
    });
    // A certificate that never gets a staple (or whose staple lapsed) gives no LeastValidityHours
    // sample: it is counted on its own.
    this.addAlarm('FailingWithoutStaple', {
      metric: metric('FailingWithoutStaple', Stats.MAXIMUM, hour),
      threshold: 1,
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      description:
        'A certificate is failing with no valid staple to serve (never obtained, or lapsed); see the run report.',
    });
    // Work left for later: certificates the deadline left (NotReached) in two runs in a row, or a
    // run that takes most of the timeout (Lambda's own Duration metric; the next one may not fit).
    const perRun = perRunPeriod(intervalMinutes);
    this.addAlarm('NotReached', {
      metric: metric('NotReached', Stats.MAXIMUM, perRun),
      threshold: 1,
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      periods: 2,
      description:
        'Two runs in a row left certificates for later (NotReached): the runs do not keep up; raise CONCURRENCY or the timeout, or split the certificates.',
    });
    const timeout = this.function.timeout ?? Duration.minutes(10);
    this.addAlarm('NearTimeout', {
      metric: this.function.metricDuration({ statistic: Stats.MAXIMUM, period: Duration.minutes(5) }),
      threshold: Math.round(NEAR_TIMEOUT_SHARE * timeout.toMilliseconds()),
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      description: `A run took ${NEAR_TIMEOUT_SHARE * 100} % of the ${timeout.toHumanString()} timeout or more: soon runs will leave certificates for later.`,
    });
    // Every non-dry run logs its metrics, so "no sample" means no run: missing data breaches.
    const noRunMinutes = Math.min(24 * 60, Math.max(2 * intervalMinutes, 60));
    this.addAlarm('NoRun', {
      metric: metric('Renewed', Stats.SAMPLE_COUNT, Duration.minutes(noRunMinutes)),
      threshold: 1,
      comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
      missing: TreatMissingData.BREACHING,
      description: `No renewer run reported in ${noRunMinutes} minutes (schedule ${p.schedule}).`,
    });
    return metric;
  }

  /** What hosts read staples with (`hostAccess`): a managed policy, optionally a user and its key. */
  private makeHostAccess(p: ResolvedProps): {
    hostPolicy?: ManagedPolicy;
    hostUser?: User;
    hostUserSecret?: Secret;
  } {
    const bucketArn = `<${logicalIdOf(this.bucket.node.defaultChild as CfnResource)}.Arn>`;
    let hostPolicy: ManagedPolicy | undefined;
    let hostUser: User | undefined;
    let hostUserSecret: Secret | undefined;
    if (p.hostAccess !== 'none') {
      hostPolicy = new ManagedPolicy(this, 'HostPolicy', {
        description: `ocsp-renewer: read the staples under ${p.staplesPrefix} (for the hosts that serve them)`,
        statements: [
          new PolicyStatement({
            sid: 'ReadStaples',
            actions: ['s3:GetObject'],
            resources: [this.bucket.arnForObjects(`${p.staplesPrefix}*`)],
          }),
          new PolicyStatement({
            sid: 'ListStaples',
            actions: ['s3:ListBucket'],
            resources: [this.bucket.bucketArn],
            conditions: { StringLike: { 's3:prefix': [p.staplesPrefix, `${p.staplesPrefix}*`] } },
          }),
        ],
      });
      acknowledge(hostPolicy, `AwsSolutions-IAM5[Resource::${bucketArn}/${p.staplesPrefix}*]`, [
        `A host reads every staple under ${p.staplesPrefix} (one per certificate); read-only, this`,
        'bucket only.',
      ]);
    }
    if (p.hostAccess === 'policy-and-user') {
      hostUser = new User(this, 'HostUser', { managedPolicies: [hostPolicy!] });
      const key = new AccessKey(this, 'HostUserAccessKey', { user: hostUser });
      hostUserSecret = new Secret(this, 'HostUserKey', {
        description: 'ocsp-renewer: access key of the host user (reads staples only)',
        secretObjectValue: {
          accessKeyId: SecretValue.unsafePlainText(key.accessKeyId),
          secretAccessKey: key.secretAccessKey,
        },
      });
      acknowledge(hostUserSecret, 'AwsSolutions-SMG4', [
        'The secret holds an IAM access key created by CloudFormation; rotating it means a new key',
        '(redeploy), not a Secrets Manager rotation Lambda. The key can only read staples, which are',
        'public OCSP responses.',
      ]);
    }
    return { hostPolicy, hostUser, hostUserSecret };
  }

  /**
   * One screen: what each run did, how close the least valid staple is to the alarm, how long runs
   * take against the timeout, the alarms, and the last failing certificates from the log.
   */
  private makeDashboard(
    metric: (name: string, statistic: string, period: Duration) => Metric,
    validityAlarmHours: number,
    intervalMinutes: number,
  ): Dashboard {
    const perRun = perRunPeriod(intervalMinutes);
    const timeout = this.function.timeout ?? Duration.minutes(10);
    const dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(7) });
    dashboard.addWidgets(
      new TextWidget({
        markdown:
          '## ocsp-renewer\nThe status page: `aws s3 presign` the `reports/status.html` object (stack output StatusPageCommand). Alarms go to the alarm topic.',
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Certificates per run',
        left: [
          metric('Renewed', Stats.SUM, perRun).with({ label: 'renewed', color: Color.GREEN }),
          metric('Failed', Stats.SUM, perRun).with({ label: 'failed', color: Color.RED }),
          metric('NotReached', Stats.SUM, perRun).with({ label: 'not reached', color: Color.ORANGE }),
          metric('FailingWithoutStaple', Stats.MAXIMUM, perRun).with({
            label: 'failing without a staple',
            color: Color.PURPLE,
          }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Least validity left (hours)',
        left: [metric('LeastValidityHours', Stats.MINIMUM, perRun).with({ label: 'least validity' })],
        leftAnnotations: [
          { value: validityAlarmHours, label: `alarm below ${validityAlarmHours} h`, color: Color.RED },
        ],
        leftYAxis: { min: 0 },
        width: 12,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Run duration (ms) against the timeout',
        left: [
          this.function.metricDuration({ statistic: Stats.MAXIMUM, period: perRun, label: 'longest run' }),
        ],
        leftAnnotations: [
          { value: timeout.toMilliseconds(), label: `timeout ${timeout.toHumanString()}`, color: Color.RED },
          {
            value: Math.round(NEAR_TIMEOUT_SHARE * timeout.toMilliseconds()),
            label: `alarm at ${NEAR_TIMEOUT_SHARE * 100} %`,
            color: Color.ORANGE,
          },
        ],
        leftYAxis: { min: 0 },
        width: 12,
      }),
      new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 12 }),
    );
    dashboard.addWidgets(
      new LogQueryWidget({
        title: 'Last failing certificates',
        logGroupNames: [this.function].map((f) => f.logGroup.logGroupName),
        queryLines: [
          'fields @timestamp, certificate, stage, reason',
          'filter msg = "certificate failed"',
          'sort @timestamp desc',
          'limit 50',
        ],
        width: 24,
      }),
    );
    return dashboard;
  }

  /** An alarm that fires as soon as a message is waiting in a dead-letter queue. */
  private addDeadLetterAlarm(id: string, queue: IQueue, description: string): void {
    this.addAlarm(id, {
      metric: queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: Stats.MAXIMUM,
      }),
      threshold: 1,
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      description,
    });
  }

  private addAlarm(
    id: string,
    a: {
      metric: IMetric;
      threshold: number;
      comparison: ComparisonOperator;
      missing: TreatMissingData;
      description: string;
      /** Consecutive breaching periods before it fires. @default 1 */
      periods?: number;
    },
  ): void {
    const alarm = new Alarm(this, `${id}Alarm`, {
      metric: a.metric,
      threshold: a.threshold,
      comparisonOperator: a.comparison,
      evaluationPeriods: a.periods ?? 1,
      ...(a.periods ? { datapointsToAlarm: a.periods } : {}),
      treatMissingData: a.missing,
      alarmDescription: `ocsp-renewer: ${a.description}`,
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
  }
}

/** One point per run, as far as CloudWatch periods allow (5 minutes at the least, an hour at most). */
function perRunPeriod(intervalMinutes: number): Duration {
  return Duration.minutes(Math.max(5, Math.min(intervalMinutes, 60)));
}

/** Makes one of the renewer's EMF metrics (namespace OcspRenewer, its Service dimension). */
type MetricOf = (metricName: string, statistic: string, period: Duration) => Metric;

function layoutOf(p: ResolvedProps) {
  return { certsPrefix: p.certsPrefix, staplesPrefix: p.staplesPrefix, statePrefix: p.statePrefix };
}

type ResolvedProps = Required<Omit<OcspRenewerProps, 'alarmEmail' | 'secretsPrefix' | 'fleet'>> &
  Pick<OcspRenewerProps, 'alarmEmail' | 'secretsPrefix' | 'fleet'>;

/** Each bad setting throws naming its prop (and so its context key). */
function checkProps(p: ResolvedProps): void {
  const prefixes = { certsPrefix: p.certsPrefix, staplesPrefix: p.staplesPrefix, statePrefix: p.statePrefix };
  for (const [name, prefix] of Object.entries(prefixes)) {
    if (!/^[^/].*\/$/.test(prefix))
      throw new Error(`${name} must be a key prefix ending in "/", got "${prefix}"`);
  }
  for (const [a, pa] of Object.entries(prefixes)) {
    for (const [b, pb] of Object.entries(prefixes)) {
      if (a !== b && pb.startsWith(pa)) throw new Error(`${b} (${pb}) must not be inside ${a} (${pa})`);
    }
  }
  if (!['publish', 'withhold'].includes(p.onRevoked)) {
    throw new Error(`onRevoked must be publish or withhold, got ${p.onRevoked}`);
  }
  if (!['policy', 'policy-and-user', 'none'].includes(p.hostAccess)) {
    throw new Error(`hostAccess must be policy, policy-and-user or none, got ${p.hostAccess}`);
  }
  if (!['retain', 'destroy'].includes(p.removalPolicy)) {
    throw new Error(`removalPolicy must be retain or destroy, got ${p.removalPolicy}`);
  }
  if (!(Number.isFinite(p.validityAlarmHours) && p.validityAlarmHours > 0)) {
    throw new Error(`validityAlarmHours must be a positive number, got ${p.validityAlarmHours}`);
  }
  if (!(Number.isInteger(p.reservedConcurrency) && p.reservedConcurrency >= 0)) {
    throw new Error(`reservedConcurrency must be a whole number ≥ 0, got ${p.reservedConcurrency}`);
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: p.timeZone });
  } catch {
    throw new Error(`timeZone must be an IANA time zone such as Europe/Berlin, got ${p.timeZone}`);
  }
  if (p.alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(p.alarmEmail)) {
    throw new Error(`alarmEmail is not an address: ${p.alarmEmail}`);
  }
}

/** The stack-wide Lambda that S3 notifications are configured through (aws-s3-notifications). */
function acknowledgeBucketNotificationsHandler(stack: Stack): void {
  const handler = stack.node.tryFindChild('BucketNotificationsHandler050a0587b7544547bf325f094a3db834');
  if (!handler) return;
  acknowledge(
    handler,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    [
      'CDK’s BucketNotificationsHandler (aws-s3-notifications) runs only at deploy time to set the',
      'bucket’s notification configuration; its role comes with the basic execution policy (logs only).',
    ],
  );
}
