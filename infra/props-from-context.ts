import type { Node } from 'constructs';
import type { HostAccess, OcspRenewerProps } from './renewer-props.js';

/**
 * The renewer's props from the app's context: cdk.json's `context` (the defaults) overridden by
 * `-c key=value`. Values from the command line arrive as strings, so numbers are parsed here and
 * an empty string means "unset". A key that is absent stays undefined and the construct's default
 * applies.
 */
export function propsFromContext(node: Node): OcspRenewerProps {
  const str = (key: string): string | undefined => {
    const value: unknown = node.tryGetContext(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new Error(`context ${key} must be a string or a number, got ${JSON.stringify(value)}`);
    }
    return String(value);
  };
  const num = (key: string): number | undefined => {
    const raw = str(key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new Error(`context ${key} must be a number, got ${raw}`);
    return n;
  };
  /** `true`/`false` (cdk.json) or "true"/"false" (`-c`). */
  const bool = (key: string): boolean | undefined => {
    const value: unknown = node.tryGetContext(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw new Error(`context ${key} must be true or false, got ${JSON.stringify(value)}`);
  };
  return {
    certsPrefix: str('certsPrefix'),
    staplesPrefix: str('staplesPrefix'),
    statePrefix: str('statePrefix'),
    schedule: str('schedule'),
    timeZone: str('timeZone'),
    onRevoked: str('onRevoked') as OcspRenewerProps['onRevoked'],
    alarmEmail: str('alarmEmail'),
    secretsPrefix: str('secretsPrefix'),
    hostAccess: str('hostAccess') as HostAccess | undefined,
    removalPolicy: str('removalPolicy') as OcspRenewerProps['removalPolicy'],
    validityAlarmHours: num('validityAlarmHours'),
    reservedConcurrency: num('reservedConcurrency'),
    reconcileSchedule: str('reconcileSchedule'),
    // No longer a switch (the design is always deployed): accepted, and warned about, for a release.
    fleet: bool('fleet'),
  };
}
