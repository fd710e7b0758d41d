import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Stats,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { deployedScope, perRunPeriod, type MetricOf } from './cdk-helpers.js';
import type { RenewerFunction } from './renewer-function.js';
import type { ResolvedProps } from './renewer-props.js';

/** The NearTimeout alarm fires when a run takes this share of the function's timeout. */
export const NEAR_TIMEOUT_SHARE = 0.8;

export interface RenewerAlarmsProps {
  readonly renewer: RenewerFunction;
  /** The renewer's metrics (its Service dimension). */
  readonly metric: MetricOf;
  /** The schedules' and asynchronous invocations' dead-letter queue. */
  readonly deadLetterQueue: IQueue;
  readonly uploadDeadLetterQueue: IQueue;
  readonly stateMachine: StateMachine;
  readonly settings: ResolvedProps;
}

/** An alarm's condition and what it says when it fires. */
interface AlarmSpec {
  metric: IMetric;
  threshold: number;
  comparison: ComparisonOperator;
  missing: TreatMissingData;
  description: string;
  /** Consecutive breaching periods before it fires. @default 1 */
  periods?: number;
}

/**
 * The ten alarms (docs/aws.md "Alarms"), each notifying the alarm topic: a topic that requires
 * TLS, lets CloudWatch alarms of this account publish, and has `alarmEmail` subscribed. Created in
 * their deployed scope (cdk-helpers.ts `deployedScope`).
 */
export class RenewerAlarms extends Construct {
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: RenewerAlarmsProps) {
    super(scope, id);
    const { renewer, metric, settings: p } = props;
    const hour = Duration.hours(1);
    const atLeastOne = {
      threshold: 1,
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
    };
    this.alarmTopic = this.makeTopic(p.alarmEmail);
    this.add('Errors', {
      metric: renewer.metricErrors({ period: Duration.minutes(5), statistic: Stats.SUM }),
      ...atLeastOne,
      description: 'A renewer run failed as a whole (configuration, S3 or Secrets Manager); see its log.',
    });
    this.addDeadLetterAlarm(
      'UploadDeadLetters',
      props.uploadDeadLetterQueue,
      'An upload notification failed three times and was dead-lettered: its certificate waits for the reconcile; read the upload dead-letter queue.',
    );
    this.add('MapRunsFailed', {
      metric: failedExecutions(props.stateMachine),
      ...atLeastOne,
      description:
        'A state machine execution (force, reconcile or a large due run) failed or timed out; see its execution history and the map run.',
    });
    this.addDeadLetterAlarm(
      'DeadLetters',
      props.deadLetterQueue,
      'A scheduled or asynchronous run was dropped after its retries; read the dead-letter queue.',
    );
    this.add('LeastValidity', {
      metric: metric('LeastValidityHours', Stats.MINIMUM, hour),
      threshold: p.validityAlarmHours,
      comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      description: `A staple has less than ${p.validityAlarmHours} h of validity left: its renewals are failing (see the run report).`,
    });
    this.add('Revoked', {
      metric: metric('Revoked', Stats.MAXIMUM, hour),
      ...atLeastOne,
      description: 'A responder reports a certificate REVOKED (see the run report): replace it.',
    });
    // A certificate that never gets a staple (or whose staple lapsed) gives no LeastValidityHours
    // sample: it is counted on its own.
    this.add('FailingWithoutStaple', {
      metric: metric('FailingWithoutStaple', Stats.MAXIMUM, hour),
      ...atLeastOne,
      description:
        'A certificate is failing with no valid staple to serve (never obtained, or lapsed); see the run report.',
    });
    this.addWorkLeftAlarms(renewer, metric, p);
  }

  /**
   * Work left for later: certificates the deadline left (NotReached) in two runs in a row, a run
   * that takes most of the timeout (Lambda's own Duration metric; the next one may not fit), or no
   * run at all.
   */
  private addWorkLeftAlarms(renewer: RenewerFunction, metric: MetricOf, p: ResolvedProps): void {
    this.add('NotReached', {
      metric: metric('NotReached', Stats.MAXIMUM, perRunPeriod(p.intervalMinutes)),
      threshold: 1,
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      periods: 2,
      description:
        'Two runs in a row left certificates for later (NotReached): the runs do not keep up; raise CONCURRENCY or the timeout, or split the certificates.',
    });
    const timeout = renewer.timeout ?? Duration.minutes(10);
    this.add('NearTimeout', {
      metric: renewer.metricDuration({ statistic: Stats.MAXIMUM, period: Duration.minutes(5) }),
      threshold: Math.round(NEAR_TIMEOUT_SHARE * timeout.toMilliseconds()),
      comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      missing: TreatMissingData.NOT_BREACHING,
      description: `A run took ${NEAR_TIMEOUT_SHARE * 100} % of the ${timeout.toHumanString()} timeout or more: soon runs will leave certificates for later.`,
    });
    // Every non-dry run logs its metrics, so "no sample" means no run: missing data breaches.
    const noRunMinutes = Math.min(24 * 60, Math.max(2 * p.intervalMinutes, 60));
    this.add('NoRun', {
      metric: metric('Renewed', Stats.SAMPLE_COUNT, Duration.minutes(noRunMinutes)),
      threshold: 1,
      comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
      missing: TreatMissingData.BREACHING,
      description: `No renewer run reported in ${noRunMinutes} minutes (schedule ${p.schedule}).`,
    });
  }

  /** The alarm topic (TLS only), CloudWatch allowed by name, `alarmEmail` subscribed. */
  private makeTopic(alarmEmail: string | undefined): Topic {
    const stack = Stack.of(this);
    const topic = new Topic(deployedScope(this), 'AlarmTopic', {
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
    if (alarmEmail) topic.addSubscription(new EmailSubscription(alarmEmail));
    return topic;
  }

  /** An alarm that fires as soon as a message is waiting in a dead-letter queue. */
  private addDeadLetterAlarm(id: string, queue: IQueue, description: string): void {
    this.add(id, {
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

  /** `<id>Alarm`, notifying the topic. */
  private add(id: string, a: AlarmSpec): void {
    const alarm = new Alarm(deployedScope(this), `${id}Alarm`, {
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

/** Failed or timed-out executions of the state machine, per 5 minutes. */
function failedExecutions(machine: StateMachine): MathExpression {
  return new MathExpression({
    expression: 'FILL(failed, 0) + FILL(timedOut, 0)',
    usingMetrics: {
      failed: machine.metricFailed({ period: Duration.minutes(5), statistic: Stats.SUM }),
      timedOut: machine.metricTimedOut({ period: Duration.minutes(5), statistic: Stats.SUM }),
    },
    period: Duration.minutes(5),
    label: 'failed or timed-out executions',
  });
}
