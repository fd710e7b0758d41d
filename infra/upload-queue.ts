import { Duration, Stack } from 'aws-cdk-lib';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { EventType, type Bucket } from 'aws-cdk-lib/aws-s3';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge, deadLetterQueue, deployedScope } from './cdk-helpers.js';
import type { RenewerFunction } from './renewer-function.js';
import { CERTIFICATE_SUFFIXES, type ResolvedProps } from './renewer-props.js';
import { UploadQueueDestination } from './upload-queue-destination.js';

export interface UploadQueueProps {
  readonly bucket: Bucket;
  /** The consumer: the renewer function, in batches with partial batch responses. */
  readonly renewer: RenewerFunction;
  readonly settings: ResolvedProps;
}

/**
 * Uploads reach the renewer at once: the bucket's notifications for certificates created or
 * removed under the certificates prefix (one filter per suffix) → an SQS queue → the renewer in
 * batches. A failed record is retried alone (partial batch responses), then dead-lettered into
 * the upload dead-letter queue. Created in its deployed scope (cdk-helpers.ts `deployedScope`).
 */
export class UploadQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: UploadQueueProps) {
    super(scope, id);
    const { bucket, renewer, settings: s } = props;
    const fleetScope = deployedScope(this, 'Fleet');
    this.deadLetterQueue = deadLetterQueue(fleetScope, 'UploadDeadLetterQueue');
    this.queue = new Queue(fleetScope, 'UploadQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS's advice for event source mappings: six times the function timeout.
      visibilityTimeout: Duration.minutes(30),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 3 },
    });
    for (const event of [EventType.OBJECT_CREATED, EventType.OBJECT_REMOVED]) {
      for (const suffix of CERTIFICATE_SUFFIXES) {
        bucket.addEventNotification(event, new UploadQueueDestination(this.queue), {
          prefix: s.certsPrefix,
          suffix,
        });
      }
    }
    renewer.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: s.uploadBatchSize,
        maxBatchingWindow: s.uploadBatchWindow,
        reportBatchItemFailures: true,
        // Two invocations at most (SQS's floor): a bulk upload never hits one responder host with
        // more than 2 × the per-host limit (4) requests at once.
        maxConcurrency: 2,
      }),
    );
    acknowledgeBucketNotificationsHandler(Stack.of(this));
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
