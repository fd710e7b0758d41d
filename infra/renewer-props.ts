import { Duration } from 'aws-cdk-lib';
import { INLINE_MAX_KEYS_DEFAULT } from '../lambda/aws/due-run-limit.js';
import { definedOnly } from './cdk-helpers.js';
import type { StapleLayout } from './renewer-function.js';
import { scheduleIntervalMinutes } from './schedule-interval.js';

export type HostAccess = 'policy' | 'policy-and-user' | 'none';

/**
 * The Distributed Map, upload queue and reports settings: props of OcspRenewer (no context keys),
 * each with a default (MAP_AND_QUEUE_DEFAULTS).
 */
export interface MapAndQueueSettings {
  /** Certificate keys per Distributed Map child (one renewer invocation). @default 250 */
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
  /**
   * Where run reports (`runs/`, expired after RUN_REPORT_DAYS), due manifests (`manifests/`), the
   * map runs' results (`map-runs/`) and the status page (`status.html`) go. @default 'reports/'
   */
  readonly reportsPrefix?: string;
  /** Upload events per renewer invocation, and how long SQS gathers them. @default 100, 60 s */
  readonly uploadBatchSize?: number;
  readonly uploadBatchWindow?: Duration;
  /**
   * A scheduled due run renews up to this many due certificates in the renewer function itself;
   * more go to the state machine as a manifest (`<reportsPrefix>manifests/…json`). The
   * function's 5-minute timeout renews a few thousand at its concurrency. @default 2000
   */
  readonly inlineMaxKeys?: number;
}

/**
 * The settings the `fleet` prop's object used to carry, before they became props of their own.
 * @deprecated Set them as props of OcspRenewer (`keysPerBatch`, `reconcileSchedule`, …).
 */
export interface FleetSettings extends MapAndQueueSettings {
  /** '' for never (`'none'` as a prop). */
  readonly reconcileSchedule?: string;
}

/**
 * The renewer's settings. Those declared here are also the context keys of cdk.json
 * (`-c name=value`, props-from-context.ts); the map and queue settings it extends are props only.
 */
export interface OcspRenewerProps extends MapAndQueueSettings {
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
   * When the state machine runs unforced over every certificate, catching what events missed (a
   * staple deleted by hand, a lost notification): an EventBridge Scheduler `rate(…)` or
   * `cron(…)` in UTC, or `none` for never. @default 'rate(1 day)'
   */
  readonly reconcileSchedule?: string;
  /**
   * No longer a switch: the state table, upload queue and state machine are always deployed.
   * `true` or `false` is accepted for a release and ignored, with a warning. An object's settings
   * still apply for that release (the props of the same names win).
   * @deprecated Remove it; set the map and queue settings as props of their own.
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
  reconcileSchedule: 'rate(1 day)',
} as const satisfies OcspRenewerProps;

/** The defaults of the settings that are props only (no context key). */
export const MAP_AND_QUEUE_DEFAULTS = {
  keysPerBatch: 250,
  maxConcurrency: 4,
  perHostLimit: 4,
  toleratedFailurePercentage: 5,
  reportsPrefix: 'reports/',
  uploadBatchSize: 100,
  uploadBatchWindow: Duration.seconds(60),
  inlineMaxKeys: INLINE_MAX_KEYS_DEFAULT,
} as const satisfies MapAndQueueSettings;

/** The `reconcileSchedule` that means no reconcile schedule. */
export const NO_RECONCILE = 'none';

/** The certificate suffixes the handler reads (CERT_EXTENSIONS' default); one notification each. */
export const CERTIFICATE_SUFFIXES = ['.pem', '.crt', '.cert'] as const;

/** Under the reports prefix: the HTML status page (lambda/report/status-page.ts). */
export const STATUS_PAGE_FILE = 'status.html';
/** Under the reports prefix: each run's full report, `runs/<startedAt>-<id>.json`. */
export const RUN_REPORTS_FOLDER = 'runs/';
/** Each run's full report is kept this many days. */
export const RUN_REPORT_DAYS = 30;
/** Under the reports prefix: the map runs' result files (`<prefix>map-runs/<map run id>/…`). */
export const MAP_RESULTS_FOLDER = 'map-runs/';
/** Under the reports prefix: the due runs' manifests for the map. */
export const MANIFESTS_FOLDER = 'manifests/';
/** Map results are kept as long as run reports; a manifest a week (its map run is long over). */
export const MAP_RESULT_DAYS = 30;
export const MANIFEST_DAYS = 7;

/** Every setting with its default applied, checked. */
export type ResolvedProps = Required<Omit<OcspRenewerProps, 'alarmEmail' | 'secretsPrefix' | 'fleet'>> &
  Pick<OcspRenewerProps, 'alarmEmail' | 'secretsPrefix' | 'fleet'> & {
    /** The longest gap between two scheduled runs, in minutes (schedule-interval.ts). */
    readonly intervalMinutes: number;
    readonly layout: StapleLayout;
    /** Where the status page goes: `<reportsPrefix>status.html`. */
    readonly statusPageKey: string;
  };

/**
 * The props with their defaults; each bad setting throws naming its prop (and context key). The
 * deprecated `fleet` object's settings apply under the props of the same names.
 */
export function resolveProps(props: OcspRenewerProps): ResolvedProps {
  const p = {
    ...MAP_AND_QUEUE_DEFAULTS,
    ...OCSP_RENEWER_DEFAULTS,
    ...(typeof props.fleet === 'object' ? fromFleetSettings(props.fleet) : {}),
    ...definedOnly(props, true),
  };
  checkProps(p);
  const intervalMinutes = scheduleIntervalMinutes(p.schedule);
  if (intervalMinutes > 24 * 60) {
    throw new Error(`schedule ${p.schedule}: the renewer must run at least once a day`);
  }
  const layout = { certsPrefix: p.certsPrefix, staplesPrefix: p.staplesPrefix, statePrefix: p.statePrefix };
  return { ...p, intervalMinutes, layout, statusPageKey: `${p.reportsPrefix}${STATUS_PAGE_FILE}` };
}

/** The deprecated `fleet` object's settings as props: its '' reconcileSchedule meant never. */
function fromFleetSettings(fleet: FleetSettings): Partial<OcspRenewerProps> {
  const settings = definedOnly(fleet);
  return settings.reconcileSchedule === '' ? { ...settings, reconcileSchedule: NO_RECONCILE } : settings;
}

function checkProps(p: Omit<ResolvedProps, 'intervalMinutes' | 'layout' | 'statusPageKey'>): void {
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
  if (p.reconcileSchedule !== NO_RECONCILE && !/^(rate|cron)\(.+\)$/.test(p.reconcileSchedule)) {
    throw new Error(
      `reconcileSchedule must be rate(…), cron(…) or ${NO_RECONCILE}, got "${p.reconcileSchedule}"`,
    );
  }
  checkMapAndQueue(p);
}

function checkMapAndQueue(s: Required<MapAndQueueSettings>): void {
  const whole = (name: string, v: number, min: number, max: number) => {
    if (!(Number.isInteger(v) && v >= min && v <= max)) {
      throw new Error(`${name} must be a whole number from ${min} to ${max}, got ${v}`);
    }
  };
  whole('keysPerBatch', s.keysPerBatch, 1, 1000);
  whole('maxConcurrency', s.maxConcurrency, 1, 10_000);
  whole('perHostLimit', s.perHostLimit, 1, 1_000);
  whole('uploadBatchSize', s.uploadBatchSize, 1, 10_000);
  whole('inlineMaxKeys', s.inlineMaxKeys, 0, 1_000_000);
  if (!(s.toleratedFailurePercentage >= 0 && s.toleratedFailurePercentage <= 100)) {
    throw new Error(`toleratedFailurePercentage must be 0–100, got ${s.toleratedFailurePercentage}`);
  }
  if (s.uploadBatchWindow.toSeconds() > 60) {
    throw new Error('uploadBatchWindow must be at most 60 seconds');
  }
  if (!/^[^/].*\/$/.test(s.reportsPrefix)) {
    throw new Error(`reportsPrefix must be a key prefix ending in "/", got "${s.reportsPrefix}"`);
  }
}
