import { Duration } from 'aws-cdk-lib';
import {
  AlarmStatusWidget,
  Color,
  Dashboard,
  GraphWidget,
  LogQueryWidget,
  Stats,
  TextWidget,
  type IAlarm,
} from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { NEAR_TIMEOUT_SHARE } from './alarms.js';
import { deployedScope, perRunPeriod, type MetricOf } from './cdk-helpers.js';
import type { RenewerFunction } from './renewer-function.js';

export interface RenewerDashboardProps {
  readonly renewer: RenewerFunction;
  /** The renewer's metrics (its Service dimension). */
  readonly metric: MetricOf;
  readonly alarms: IAlarm[];
  readonly statusPageKey: string;
  readonly validityAlarmHours: number;
  /** The longest gap between two scheduled runs: one graph point per run. */
  readonly intervalMinutes: number;
}

/**
 * One screen: what each run did, how close the least valid staple is to the alarm, how long runs
 * take against the timeout, the alarms, and the last failing certificates from the log. Created
 * in its deployed scope (cdk-helpers.ts `deployedScope`).
 */
export class RenewerDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: RenewerDashboardProps) {
    super(scope, id);
    const { renewer, metric, validityAlarmHours } = props;
    const perRun = perRunPeriod(props.intervalMinutes);
    const timeout = renewer.timeout ?? Duration.minutes(10);
    const dashboard = (this.dashboard = new Dashboard(deployedScope(this), 'Dashboard', {
      defaultInterval: Duration.days(7),
    }));
    dashboard.addWidgets(
      new TextWidget({
        markdown: `## ocsp-renewer\nThe status page: \`aws s3 presign\` the \`${props.statusPageKey}\` object (stack output StatusPageCommand). Alarms go to the alarm topic.`,
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
        left: [renewer.metricDuration({ statistic: Stats.MAXIMUM, period: perRun, label: 'longest run' })],
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
      new AlarmStatusWidget({ title: 'Alarms', alarms: props.alarms, width: 12 }),
    );
    dashboard.addWidgets(
      new LogQueryWidget({
        title: 'Last failing certificates',
        logGroupNames: [renewer].map((f) => f.logGroup.logGroupName),
        queryLines: [
          'fields @timestamp, certificate, stage, reason',
          'filter message = "certificate failed"',
          'sort @timestamp desc',
          'limit 50',
        ],
        width: 24,
      }),
    );
  }
}
