import { Annotations, Stack } from 'aws-cdk-lib';
import type { Alarm, Dashboard } from 'aws-cdk-lib/aws-cloudwatch';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import type { ManagedPolicy, User } from 'aws-cdk-lib/aws-iam';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import type { Schedule } from 'aws-cdk-lib/aws-scheduler';
import type { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Topic } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { STATE_TABLE } from '../lambda/adapters/dynamo-state.js';
import { RenewerAlarms } from './alarms.js';
import { removalPolicyOf, renewerMetrics } from './cdk-helpers.js';
import { RenewerDashboard } from './dashboard.js';
import { HostStapleAccess } from './host-access.js';
import { RenewerFunction } from './renewer-function.js';
import { resolveProps, type OcspRenewerProps, type ResolvedProps } from './renewer-props.js';
import { RenewerSchedules, runsDeadLetterQueue } from './schedules.js';
import { RenewAllStateMachine } from './state-machine.js';
import { RenewerStorage } from './storage.js';
import { UploadQueue } from './upload-queue.js';

export {
  MAP_AND_QUEUE_DEFAULTS,
  OCSP_RENEWER_DEFAULTS,
  type FleetSettings,
  type HostAccess,
  type MapAndQueueSettings,
  type OcspRenewerProps,
} from './renewer-props.js';

/**
 * ocsp-renewer, embeddable in any stack, built from small constructs: the storage (bucket, state
 * table), the renewer function, the upload queue, the state machine, the schedules (and their
 * dead-letter queue), the alarms, the dashboard and the hosts' access to the staples. Each part
 * creates its resources where they were first deployed, so a deployed stack updates in place
 * (cdk-helpers.ts `deployedScope`).
 */
export class OcspRenewer extends Construct {
  readonly bucket: Bucket;
  /** One item per certificate, and the due index. */
  readonly table: Table;
  readonly function: RenewerFunction;
  readonly uploadQueue: Queue;
  readonly uploadDeadLetterQueue: Queue;
  readonly stateMachine: StateMachine;
  readonly deadLetterQueue: Queue;
  readonly schedule: Schedule;
  /** Starts the state machine unforced (reconcileSchedule). */
  readonly reconcileSchedule?: Schedule;
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[];
  /** Renewals per run, least validity, run duration, alarm states and the last failures. */
  readonly dashboard: Dashboard;
  /** Reads the staples: attach it to instance roles or IAM Roles Anywhere roles. */
  readonly hostPolicy?: ManagedPolicy;
  /** With hostAccess 'policy-and-user': the user whose key hosts outside AWS use. */
  readonly hostUser?: User;
  /** With hostAccess 'policy-and-user': `{"accessKeyId": …, "secretAccessKey": …}`. */
  readonly hostUserSecret?: Secret;
  /** Renews every certificate now, through the Distributed Map. */
  readonly forceAllCommand: string;
  /** The environment of host/pull-staples.sh. */
  readonly pullScriptSettings: string;
  /** Prints a presigned URL of the status page (AWS CLI v2). */
  readonly statusPageCommand: string;
  /** Where run reports, manifests, map results and the status page go (`reportsPrefix`). */
  readonly reportsPrefix: string;
  /** The status page's key: `<reportsPrefix>status.html`. */
  readonly statusPageKey: string;

  constructor(scope: Construct, id: string, props: OcspRenewerProps = {}) {
    super(scope, id);
    const p = resolveProps(props);
    const stack = Stack.of(this);
    ({ reportsPrefix: this.reportsPrefix, statusPageKey: this.statusPageKey } = p);
    if (typeof props.fleet === 'boolean') {
      // The deprecated switch only: its object form still carries settings, which apply.
      Annotations.of(this).addWarningV2(
        'ocsp-renewer:fleet-ignored',
        'fleet is no longer a switch: the state table, upload queue and state machine are always deployed. Remove -c fleet=… / the fleet prop.',
      );
    }
    ({ bucket: this.bucket, table: this.table } = new RenewerStorage(this, 'Storage', p));
    // One metrics dimension per deployment, so two renewers in one account (staging and
    // production, say) never share, or silence, each other's alarms.
    const metricsService = `ocsp-renewer/${stack.stackName}/${this.node.id}`;
    const renewer = (this.function = this.makeFunction(p, metricsService));
    this.deadLetterQueue = runsDeadLetterQueue(this, renewer);
    renewer.bindTable(this.table, STATE_TABLE.dueIndex);
    ({ queue: this.uploadQueue, deadLetterQueue: this.uploadDeadLetterQueue } = new UploadQueue(
      this,
      'Uploads',
      { bucket: this.bucket, renewer, settings: p },
    ));
    const renewAll = new RenewAllStateMachine(this, 'StateMachine', {
      bucket: this.bucket,
      renewer,
      settings: p,
    });
    this.stateMachine = renewAll.stateMachine;
    renewer.bindDueRun(this.bucket, {
      reportsPrefix: p.reportsPrefix,
      stateMachineArn: renewAll.arnFromName,
      inlineMaxKeys: p.inlineMaxKeys,
    });
    ({ schedule: this.schedule, reconcileSchedule: this.reconcileSchedule } = new RenewerSchedules(
      this,
      'Schedules',
      { renewer, stateMachine: this.stateMachine, deadLetterQueue: this.deadLetterQueue, settings: p },
    ));

    const metric = renewerMetrics(metricsService);
    ({ alarmTopic: this.alarmTopic, alarms: this.alarms } = new RenewerAlarms(this, 'Alarms', {
      renewer,
      metric,
      deadLetterQueue: this.deadLetterQueue,
      uploadDeadLetterQueue: this.uploadDeadLetterQueue,
      stateMachine: this.stateMachine,
      settings: p,
    }));
    ({
      hostPolicy: this.hostPolicy,
      hostUser: this.hostUser,
      hostUserSecret: this.hostUserSecret,
    } = new HostStapleAccess(this, 'HostAccess', { bucket: this.bucket, ...p }));
    this.forceAllCommand = renewAll.forceAllCommand;
    this.statusPageCommand = `aws s3 presign s3://${this.bucket.bucketName}/${p.statusPageKey} --expires-in 3600`;
    ({ dashboard: this.dashboard } = new RenewerDashboard(this, 'Overview', {
      renewer,
      metric,
      alarms: this.alarms,
      statusPageKey: p.statusPageKey,
      validityAlarmHours: p.validityAlarmHours,
      intervalMinutes: p.intervalMinutes,
    }));
    this.pullScriptSettings = `OCSP_BUCKET=${this.bucket.bucketName} OCSP_PREFIX=${p.staplesPrefix} AWS_REGION=${stack.region}`;
  }

  /** The one renewer function, bound to the bucket, the secrets and the status page. */
  private makeFunction(p: ResolvedProps, metricsService: string): RenewerFunction {
    const renewer = new RenewerFunction(this, 'Function', {
      reservedConcurrentExecutions: p.reservedConcurrency > 0 ? p.reservedConcurrency : undefined,
      logGroupRemovalPolicy: removalPolicyOf(p.removalPolicy),
    });
    renewer.bindStaples(this.bucket, p.layout);
    renewer.addEnvironment('ON_REVOKED', p.onRevoked);
    renewer.addEnvironment('METRICS_SERVICE', metricsService);
    if (p.secretsPrefix) renewer.bindSecrets(p.secretsPrefix);
    renewer.bindStatusPage(this.bucket, p.statusPageKey);
    return renewer;
  }
}
