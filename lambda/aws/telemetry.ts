import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { capLogLine } from './log-line.js';

/** The namespace of the renewer's metrics: the alarms and the dashboard read it (infra/). */
export const METRICS_NAMESPACE = 'OcspRenewer';
/** The `Service` dimension (and the log lines' `service`) when METRICS_SERVICE is not set. */
export const DEFAULT_SERVICE = 'ocsp-renewer';

/**
 * The handler's Powertools Logger: one JSON line per call on stdout (warnings on stderr), with
 * `level`, `message`, `timestamp` and `service` (METRICS_SERVICE), every line held under
 * MAX_LOG_LINE_BYTES (capLogLine). Built once per container, in the Lambda entry.
 */
export function renewerLogger(service: string | undefined = process.env.METRICS_SERVICE): Logger {
  return new Logger({ serviceName: service || DEFAULT_SERVICE, jsonReplacerFn: capLogLine });
}

/**
 * The handler's Powertools Metrics, namespace OcspRenewer; its own warnings go through `logger`.
 * Powertools gives every instance a lowercase `service` default dimension; the alarms match the
 * exact dimension set [Service] (CloudWatch never matches a subset), so it is cleared here and
 * each run adds `Service` itself (run-output.ts publishMetrics).
 */
export function renewerMetrics(logger: Logger): Metrics {
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, logger });
  metrics.clearDefaultDimensions();
  return metrics;
}
