import { Duration, RemovalPolicy, Stack, Validations, type CfnResource } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';

/**
 * The props that are set: undefined ones dropped (so `{ ...DEFAULTS, ...definedOnly(props) }`
 * keeps a default), and with `emptyIsUnset` the empty strings too (context values from `-c`).
 */
export function definedOnly<T extends object>(props: T, emptyIsUnset = false): Partial<T> {
  return Object.fromEntries(
    Object.entries(props).filter(([, v]) => v !== undefined && !(emptyIsUnset && v === '')),
  ) as Partial<T>;
}

/** A resource's logical id as a plain string (for cdk-nag acknowledgement ids). */
export function logicalIdOf(resource: CfnResource): string {
  return Stack.of(resource).resolve(resource.logicalId) as string;
}

/** An L2 construct's ARN as cdk-nag writes it in a finding: `<LogicalId.Arn>`. */
export function nagArn(construct: IConstruct): string {
  return `<${logicalIdOf(construct.node.defaultChild as CfnResource)}.Arn>`;
}

/** Acknowledges a cdk-nag finding on `scope`, with the reason in words. */
export function acknowledge(scope: IConstruct, id: string, reason: string[]): void {
  Validations.of(scope).acknowledge({ id, reason: reason.join(' ') });
}

/** `retain` (the default) or `destroy`, the `removalPolicy` setting, as CDK's RemovalPolicy. */
export function removalPolicyOf(setting: 'retain' | 'destroy'): RemovalPolicy {
  return setting === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
}

/**
 * Where a part of OcspRenewer (storage.ts, schedules.ts, …) creates its resources: not under
 * itself, but in the scope they were first deployed under — the OcspRenewer, or its `Fleet`
 * child (once the RenewerFleet construct: state table, upload queue, state machine, reconcile
 * schedule) — under the ids they had there.
 *
 * Why: CDK derives every logical ID (and the state machine's name) from the construct path, and
 * CloudFormation replaces a resource whose logical ID changes: a new, empty bucket or state table,
 * a named state machine that fails to create, or the bucket-notifications custom resource wiping
 * the notifications when the old one is deleted after the new one was created. Creating the
 * resources in these scopes keeps every logical ID as deployed, with no overrideLogicalId;
 * test/stack.upgrade.test.ts holds them to test/fixtures/stack-logical-ids.json.
 */
export function deployedScope(part: Construct, child?: 'Fleet'): Construct {
  const renewer = part.node.scope!;
  if (child === undefined) return renewer;
  return (renewer.node.tryFindChild(child) as Construct | undefined) ?? new Construct(renewer, child);
}

/**
 * A role for EventBridge Scheduler, trusted only by this account's default schedule group (not
 * CDK's stack-wide scheduler role); the schedule's target grants it what it invokes.
 */
export function schedulerRole(scope: Construct, id: string, description: string): Role {
  const stack = Stack.of(scope);
  return new Role(scope, id, {
    description,
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
}

/** A dead-letter queue: SSE-SQS, TLS only, messages kept 14 days (SQS's longest). */
export function deadLetterQueue(scope: Construct, id: string): Queue {
  return new Queue(scope, id, {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
}

/** The namespace of the handler's metrics (lambda/aws/telemetry.ts `METRICS_NAMESPACE`; test/stack.test.ts checks they agree). */
export const METRICS_NAMESPACE = 'OcspRenewer';

/** Makes one of the renewer's metrics (namespace OcspRenewer, its Service dimension). */
export type MetricOf = (metricName: string, statistic: string, period: Duration) => Metric;

/** The metric maker of one deployment (`metricsService`: its `Service` dimension). */
export function renewerMetrics(metricsService: string): MetricOf {
  return (metricName, statistic, period) =>
    new Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { Service: metricsService },
      statistic,
      period,
    });
}

/** One point per run, as far as CloudWatch periods allow (5 minutes at the least, an hour at most). */
export function perRunPeriod(intervalMinutes: number): Duration {
  return Duration.minutes(Math.max(5, Math.min(intervalMinutes, 60)));
}
