import { Duration, TimeZone } from 'aws-cdk-lib';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke, StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge, deadLetterQueue, deployedScope, nagArn, schedulerRole } from './cdk-helpers.js';
import type { RenewerFunction } from './renewer-function.js';
import { NO_RECONCILE, type ResolvedProps } from './renewer-props.js';

export interface RenewerSchedulesProps {
  readonly renewer: RenewerFunction;
  readonly stateMachine: StateMachine;
  /** Where a run that could not be delivered goes (`runsDeadLetterQueue`). */
  readonly deadLetterQueue: Queue;
  readonly settings: ResolvedProps;
}

/**
 * The dead-letter queue of the runs: a scheduled run or a reconcile start that could not be
 * delivered, and an asynchronous invocation of the renewer that failed its retries (which
 * `configureAsyncInvoke` sends here). `scope` is the OcspRenewer: the queue's deployed scope
 * (cdk-helpers.ts `deployedScope`).
 */
export function runsDeadLetterQueue(scope: Construct, renewer: RenewerFunction): Queue {
  const queue = deadLetterQueue(scope, 'DeadLetterQueue');
  acknowledge(queue, 'AwsSolutions-SQS3', [
    'This queue is the dead-letter queue: of the schedule and of the function’s asynchronous',
    'invocations. A dead-letter queue of its own would only move the problem; its depth alarms.',
  ]);
  // A run fails only as a whole (bad configuration, S3 or DynamoDB unreachable); retries then
  // recover it. Throttles wait in the async queue, up to maxEventAge, and are no retries.
  renewer.configureAsyncInvoke({
    retryAttempts: 2,
    maxEventAge: Duration.hours(1),
    onFailure: new SqsDestination(queue),
  });
  return queue;
}

/**
 * What runs the renewer on its own: the due run's schedule (`schedule`, `{"mode":"due"}` to the
 * renewer function) and the reconcile schedule (`reconcileSchedule`, the state machine unforced
 * over every certificate), both dead-lettered. Created in their deployed scopes (cdk-helpers.ts
 * `deployedScope`).
 */
export class RenewerSchedules extends Construct {
  readonly deadLetterQueue: Queue;
  readonly schedule: Schedule;
  /** Starts the state machine unforced (`reconcileSchedule`); none when that is `none`. */
  readonly reconcileSchedule?: Schedule;

  constructor(scope: Construct, id: string, props: RenewerSchedulesProps) {
    super(scope, id);
    const { renewer, settings: p } = props;
    this.deadLetterQueue = props.deadLetterQueue;
    this.schedule = this.dueRunSchedule(renewer, p);
    if (p.reconcileSchedule !== NO_RECONCILE) {
      this.reconcileSchedule = this.reconcile(props.stateMachine, p.reconcileSchedule);
    }
  }

  /**
   * The due run: the function reads the due index and renews only what is due (inline, or through
   * the state machine when there is much), so a scheduled run's cost follows what is due, not the
   * number of certificates. The schedule's role may invoke the function and send to the queue.
   */
  private dueRunSchedule(renewer: RenewerFunction, p: ResolvedProps): Schedule {
    const scope = deployedScope(this);
    const role = schedulerRole(
      scope,
      'ScheduleRole',
      'ocsp-renewer: the schedule invokes the renewer function (due run)',
    );
    const schedule = new Schedule(scope, 'Schedule', {
      description: 'ocsp-renewer: renew the staples that are due',
      schedule: ScheduleExpression.expression(p.schedule, TimeZone.of(p.timeZone)),
      target: new LambdaInvoke(renewer, {
        role,
        input: ScheduleTargetInput.fromObject({ mode: 'due' }),
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
        deadLetterQueue: this.deadLetterQueue,
      }),
    });
    acknowledge(role.node.findChild('DefaultPolicy'), `AwsSolutions-IAM5[Resource::${nagArn(renewer)}:*]`, [
      'CDK’s grantInvoke also names the function’s versions and aliases (<arn>:*); the wildcard',
      'covers qualifiers of this one function only.',
    ]);
    return schedule;
  }

  /** The reconcile: the state machine unforced over every certificate, dead-lettered. */
  private reconcile(stateMachine: StateMachine, expression: string): Schedule {
    const scope = deployedScope(this, 'Fleet');
    const role = schedulerRole(
      scope,
      'ReconcileScheduleRole',
      'ocsp-renewer: the reconcile schedule starts the renew-all state machine',
    );
    return new Schedule(scope, 'ReconcileSchedule', {
      description: 'ocsp-renewer: renew what is due over every certificate (catches missed events)',
      schedule: ScheduleExpression.expression(expression, TimeZone.ETC_UTC),
      target: new StepFunctionsStartExecution(stateMachine, {
        role,
        input: ScheduleTargetInput.fromObject({ force: false }),
        retryAttempts: 2,
        deadLetterQueue: this.deadLetterQueue,
      }),
    });
  }
}
