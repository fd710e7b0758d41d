import { DEFAULT_HTTP, type HttpOptions } from '../adapters/http.js';
import { privateRespondersAllowed } from '../adapters/ssrf-guard.js';
import { flagSource, readSetting, SETTINGS, type SettingSpec } from '../renew/settings.js';
import { settingFlag, type Flag, type FlagValues } from './flags.js';

// The flags more than one command takes, and the settings read from them.

export const JSON_FLAG: Flag = { name: 'json', type: 'boolean', help: 'print JSON' };
/** The flags of every command that asks a responder. */
export const QUERY_FLAGS: Flag[] = [
  {
    name: 'allow-private-responders',
    type: 'boolean',
    help: 'allow responder/caIssuers URLs on loopback or link-local addresses (also OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS=1)',
  },
  settingFlag(SETTINGS.hash),
  { name: 'nonce', type: 'boolean', help: 'send a nonce (off by default; most CAs ignore it)' },
  settingFlag(SETTINGS.timeoutSeconds),
];

export function setting<N extends keyof typeof SETTINGS>(name: N, values: FlagValues) {
  const spec = SETTINGS[name] as SettingSpec<unknown>;
  const raw = values[spec.flag];
  return readSetting(name, typeof raw === 'string' ? raw : undefined, flagSource(spec));
}

export function httpOptions(values: FlagValues): HttpOptions {
  return {
    ...DEFAULT_HTTP,
    timeoutMs: setting('timeoutSeconds', values) * 1000,
    allowPrivate: privateRespondersAllowed(values['allow-private-responders'] === true),
    maxSocketsPerHost: setting('perHostConcurrency', values),
  };
}
