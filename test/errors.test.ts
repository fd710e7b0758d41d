/**
 * Every error class the renewer throws has a `name` and a stable `code` (as got's RequestError
 * does), each raised here through the path that really throws it, so callers and log readers can
 * tell the failures apart without matching messages.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { httpRequest, DEFAULT_HTTP } from '../lambda/adapters/http.js';
import { assertHostAllowed } from '../lambda/adapters/ssrf-guard.js';
import { configFromEnv } from '../lambda/aws/config.js';
import { parseEvent } from '../lambda/aws/event.js';
import { parseCommand, type Command } from '../lambda/cli/flags.js';
import { acquireLock } from '../lambda/cli/lock.js';
import { parseCertificates } from '../lambda/core/certificate.js';
import { DeadlineError, RenewError } from '../lambda/core/errors.js';
import { parseOcspResponse } from '../lambda/core/ocsp-response.js';
import { resolveIssuer } from '../lambda/renew/issuer.js';
import { NotStarted } from '../lambda/renew/ocsp-query.js';
import { namingFrom } from '../lambda/renew/ports.js';
import { readSetting } from '../lambda/renew/settings.js';
import { VECTORS_DIR } from './helpers/vectors.js';

/** What `fn` throws (or its promise rejects with). */
async function thrown(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('nothing was thrown');
}

const command: Command = {
  name: 'inspect',
  synopsis: '<file>',
  summary: '',
  description: '',
  positionals: 1,
  flags: [],
  run: async () => 0,
};
const leafPem = readFileSync(path.join(VECTORS_DIR, 'aws-lc-s2n', 'rsa_cert.pem'));

describe('error names and codes', () => {
  it.each<[string, string, string, () => unknown]>([
    ['ConfigError', 'CONFIG', 'BUCKET is not set', () => configFromEnv({})],
    ['EventError', 'EVENT', 'event must be a JSON object', () => parseEvent([], 'certs/', namingFrom(undefined, undefined))],
    ['EventError', 'EVENT', 'key "certs/%E0.pem" is not URL-encoded', () => parseEvent(
      { Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { object: { key: 'certs/%E0.pem' } } }] },
      'certs/', namingFrom(undefined, undefined))],
    ['SettingError', 'SETTING', '--hash must be', () => readSetting('hash', 'md5', '--hash')],
    ['UsageError', 'USAGE', 'inspect expects 1 argument, got 0', () => parseCommand(command, [])],
    ['CertificateParseError', 'CERTIFICATE_PARSE', 'no CERTIFICATE block', () =>
      parseCertificates(Buffer.from('-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n'))],
    ['ResponseParseError', 'RESPONSE_PARSE', '', () => parseOcspResponse(Buffer.from('<html>'))],
    ['IssuerNotFoundError', 'ISSUER_NOT_FOUND', 'no issuer certificate', () =>
      resolveIssuer(parseCertificates(leafPem)[0]!, [])],
    ['ForbiddenAddressError', 'EFORBIDDENADDRESS', '127.0.0.1', () => assertHostAllowed('127.0.0.1')],
    ['HttpError', 'INVALID_URL', 'invalid URL', () => httpRequest('not a url', { method: 'GET' }, DEFAULT_HTTP)],
    ['HttpError', 'UNSUPPORTED_PROTOCOL', 'only http and https', () =>
      httpRequest('ftp://example.test/', { method: 'GET' }, DEFAULT_HTTP)],
    ['DeadlineError', 'DEADLINE', "the run's deadline has come", () =>
      httpRequest('http://example.test/', { method: 'GET' }, DEFAULT_HTTP, { timeLeft: () => 0 })],
  ])('%s: code %s', async (name, code, message, fn) => {
    const err = await thrown(fn);
    expect(err).toBeInstanceOf(Error);
    expect({ name: err.name, code: (err as { code?: string }).code }).toEqual({ name, code });
    expect(err.message).toContain(message);
  }); // prettier-ignore

  it('LockBusyError: code LOCK_BUSY when a live process holds the lock', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-errors-'));
    try {
      const lock = await acquireLock(path.join(dir, 'lock'), 0); // held by this process, alive
      const err = await thrown(() => acquireLock(lock.file, 0));
      expect({ name: err.name, code: (err as { code?: string }).code }).toEqual({
        name: 'LockBusyError',
        code: 'LOCK_BUSY',
      });
      await lock.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('NotStarted, RenewError: a name, and a code (RenewError: the verdict code it was given)', () => {
    expect(new NotStarted('x')).toMatchObject({ name: 'NotStarted', code: 'NOT_STARTED' });
    const err = new RenewError('validate', 'a.pem', 'stale', { code: 'stale' });
    expect(err).toMatchObject({ name: 'RenewError', code: 'stale', stage: 'validate', key: 'a.pem' });
    expect(new DeadlineError('cut')).toMatchObject({ name: 'DeadlineError', code: 'DEADLINE' });
  });
});
