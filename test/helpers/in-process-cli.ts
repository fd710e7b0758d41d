/**
 * The command run in-process (`main`) against an `openssl ocsp` responder: a test PKI, its
 * delegated responder and a work directory that holds `$XDG_STATE_HOME`, so run state stays out
 * of the user's home. `stop()` restores `process.env` and removes all of it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../lambda/cli/cli.js';
import { startDelegatedResponder } from './openssl-responder.js';
import { makeTestPki, type TestPki } from './pki.js';

export interface InProcessCli {
  pki: TestPki;
  work: string;
  stop(): Promise<void>;
}

/** Starts the set-up; `prefix` names the work directory (e.g. `ocsp-renewer-certbot-`). */
export async function startInProcessCli(prefix: string): Promise<InProcessCli> {
  const savedEnv = { ...process.env };
  const pki = await makeTestPki();
  const responder = await startDelegatedResponder(pki);
  const work = await mkdtemp(path.join(tmpdir(), prefix));
  process.env.XDG_STATE_HOME = path.join(work, 'state');
  delete process.env.OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS;
  return {
    pki,
    work,
    async stop() {
      process.env = savedEnv;
      await responder.stop();
      await pki.cleanup();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** `main(args)` with its output collected, one line per write. */
export async function runMain(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, {
    out: (t) => void (out += t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => void (err += t.endsWith('\n') ? t : `${t}\n`),
  });
  return { code, out, err };
}
