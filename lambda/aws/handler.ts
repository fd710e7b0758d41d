import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { dueRun } from './due-run.js';
import { parseEvent } from './event.js';
import { forceRun } from './force-run.js';
import {
  invocation,
  type Clients,
  type HandlerDeps,
  type LambdaContext,
  type Telemetry,
} from './invocation.js';
import { mapBatch, parseMapBatch } from './map-batch.js';
import type { RunSummary } from './run-summary.js';
import { isSqsEvent, uploadBatch } from './sqs-uploads.js';
import { renewerLogger, renewerMetrics } from './telemetry.js';

export type { HandlerDeps } from './invocation.js';
export type { BatchSummary, RunSummary } from './run-summary.js';

/**
 * The renewer's one Lambda handler. It routes by the event's shape:
 * - an SQS batch (the upload queue): sqs-uploads.ts, a partial batch response;
 * - `{"mode":"batch","keys":[…]}` (a Distributed Map child): map-batch.ts;
 * - `{}`, `{"mode":"scheduled"}` or `{"mode":"due"}` (the schedule): due-run.ts, what the due
 *   index says is due (and, the first time, every certificate without an item);
 * - `{"mode":"force"}` with optional `keys` or `prefix` (and S3 notifications sent straight to
 *   the function): force-run.ts — everything goes through the state machine;
 * - `"dryRun": true` with a scheduled or forced run: decide and report, write nothing.
 * Anything else is refused with a clear error (EventError) and nothing is done. The state is one
 * DynamoDB item per certificate (STATE_TABLE); every run ends with a run report object under
 * `reports/runs/`, the `"message":"run report"` line and the metrics the alarms read, through
 * Powertools Logger and Metrics.
 */
export interface RenewerHandler {
  (event: SQSEvent, context?: LambdaContext): Promise<SQSBatchResponse>;
  (event: unknown, context?: LambdaContext): Promise<RunSummary>;
}

export function createHandler(deps: HandlerDeps = {}): RenewerHandler {
  const clients: Clients = {};
  const logger = deps.logger ?? renewerLogger((deps.env ?? process.env).METRICS_SERVICE);
  const telemetry: Telemetry = { logger, metrics: deps.metrics ?? renewerMetrics(logger) };
  return async function handler(
    event: unknown,
    context?: LambdaContext,
  ): Promise<RunSummary | SQSBatchResponse> {
    // The request id (and function, cold start) on every line, as Powertools' injectLambdaContext.
    if (context) logger.addContext(context as Context);
    const inv = invocation(deps, clients, telemetry, context);
    if (isSqsEvent(event)) return uploadBatch(event, inv, context);
    const e = event as Record<string, unknown> | null | undefined;
    if (e && typeof e === 'object' && !Array.isArray(e) && e.mode === 'batch') {
      return mapBatch(parseMapBatch(e, inv.config.certsPrefix), inv);
    }
    const request = parseEvent(event, inv.config.certsPrefix, inv.config.naming, inv.config.bucket);
    if (request.mode === 'scheduled') return dueRun(inv, request.dryRun);
    return forceRun(request, inv);
  } as RenewerHandler;
}

/** Built once per container, at module scope, as the upload batch processor is (sqs-uploads.ts). */
const entryLogger = renewerLogger();

export const handler = createHandler({ logger: entryLogger, metrics: renewerMetrics(entryLogger) });
