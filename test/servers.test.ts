/**
 * The server recipes of docs/hosts.md, end to end: the Lambda handler renews a staple into s3rver
 * from a real `openssl ocsp` responder, host/pull-staples.sh installs it with the aws CLI, and a
 * real server staples it: openssl s_server, nginx, HAProxy and Exim, each on 127.0.0.1 with the
 * configuration of host/examples/ (paths and ports substituted). `openssl s_client -status` is the
 * client. Then a renewal is pulled with the server's reload command, and the client must see the
 * new response (a later Produced At).
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../lambda/aws/handler.js';
import { startDelegatedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { freePort, makeTestPki, openssl, type TestPki } from './helpers/pki.js';
import { AWS_V2, makeStaple, producedAt, repoRoot, runPull } from './helpers/pull-script.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import { stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { sClient, sServerArgs } from './helpers/processes.js';
import { DEV_BIN, runToEnd } from './helpers/cli-process.js';
import { silentTelemetry } from './helpers/lambda-output.js';

const exec = promisify(execFile);
const BUCKET = 'server-recipes';
const examples = path.join(repoRoot, 'host', 'examples');
const isRoot = process.getuid?.() === 0;

/** The HAProxy reload command of docs/hosts.md, as written there (paths substituted in tests). */
const HAPROXY_RELOAD = '/usr/local/sbin/haproxy-ocsp-push.sh /run/haproxy/admin.sock';
/** The local command for HAProxy in docs/hosts.md: staples beside each crt, named <crt>.ocsp. */
const HAPROXY_LOCAL_RENEW = [
  'renew', '--certs', '/etc/haproxy/certs', '--staples', '/etc/haproxy/certs', '--extension', '.pem.ocsp',
]; // prettier-ignore
/** The local command for Exim in docs/hosts.md: SIGHUP after a change. */
const EXIM_LOCAL_RELOAD = 'kill -HUP "$(cat /run/exim4/exim.pid)"';
const PUSH_SCRIPT = path.join(repoRoot, 'host', 'haproxy-ocsp-push.sh');

/** A tool on PATH or in the sbin directories (servers live there; a user's PATH may lack them). */
function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** An nc that can talk to a unix socket (OpenBSD's: Debian netcat-openbsd, FreeBSD's base nc). */
function ncSupportsUnixSockets(): boolean {
  const nc = findTool('nc');
  if (!nc) return false;
  const help = spawnSync(nc, ['-h'], { encoding: 'utf8', timeout: 5_000 }); // help goes to stderr
  return /^\s*-U\b/m.test(`${help.stdout ?? ''}${help.stderr ?? ''}`);
}

const tools = {
  aws: existsSync(AWS_V2),
  nginx: findTool('nginx'),
  haproxy: findTool('haproxy'),
  exim: findTool('exim4') ?? findTool('exim'),
  socat: findTool('socat'),
  ncUnix: ncSupportsUnixSockets(),
  systemdAnalyze: findTool('systemd-analyze'),
};

let work: string;
let pki: TestPki;
let responder: OpensslResponder;
let s3: S3Server;
let admin: S3Client;
/** The renewer's state table (dynalite). */
let dynamo: DynamoServer;
/** The staples directory every server here reads (as /etc/ssl/ocsp on a host). */
let dest: string;
let staple: string;
let lastRenewal = 0;

const servers: Server[] = [];
/** Every pid a server had (main process and children), for the leak check at the end. */
const seenPids = new Set<number>();

if (!tools.aws) skipped('server recipes', `no aws CLI v2 at ${AWS_V2} (Debian: awscli)`);
describe.skipIf(!tools.aws)(
  'server recipes with a staple renewed by the handler and pulled by the script',
  () => {
    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'ocsp-servers-'));
      await chmod(work, 0o755); // Exim reads as its own user
      [pki, s3, dynamo] = await Promise.all([
        makeTestPki(),
        startS3Server({ buckets: [BUCKET] }),
        startDynalite(),
      ]);
      await dynamo.createTable(stateTableDefinition(BUCKET));
      responder = await startDelegatedResponder(pki);
      admin = s3.client();
      await admin.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: 'certs/web/good.pem',
          Body: await readFile(pki.leaves.good.bundle),
        }),
      );
      await renew('scheduled');
      dest = path.join(work, 'ocsp');
      staple = path.join(dest, 'web', 'good.ocsp');
      const r = await pull(dest);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('installed web/good.ocsp');
    }, 120_000);

    afterAll(async () => {
      await stopServers();
      admin?.destroy();
      await dynamo?.stop();
      await responder?.stop();
      await s3?.stop();
      await pki?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('openssl s_server -status_file: s_client -status sees successful, good', async () => {
      const port = await freePort();
      const server = launch(
        's_server',
        'openssl',
        sServerArgs({ port, leaf: pki.leaves.good, chain: pki.intermediate.cert, staple }),
      );
      // s_server prints ACCEPT once listening; a probe connection would be served as a client.
      await waitFor(
        () => server.output().includes('ACCEPT'),
        60_000,
        () => `s_server: ${server.output()}`,
      );
      await expectStapled(['-connect', `127.0.0.1:${port}`], staple);
    }, 120_000);

    if (!tools.nginx) skipped('nginx recipe', 'nginx is not installed (Debian: nginx)');
    describe.skipIf(!tools.nginx)(
      'nginx: ssl_stapling on; ssl_stapling_file (host/examples/nginx-ocsp.conf)',
      () => {
        let port: number;
        let dir: string;
        let reloadCommand: string;

        beforeAll(async () => {
          port = await freePort();
          dir = path.join(work, 'nginx');
          await mkdir(dir);
          const fullchain = path.join(dir, 'fullchain.pem');
          await writeFile(
            fullchain,
            (await readFile(pki.leaves.good.cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8')),
          );
          const site = instantiate(await readFile(path.join(examples, 'nginx-ocsp.conf'), 'utf8'), {
            'listen 443 ssl;': `listen 127.0.0.1:${port} ssl;`,
            '/etc/ssl/certs/www.example.com.fullchain.pem': fullchain,
            '/etc/ssl/private/www.example.com.key': pki.leaves.good.key,
            '/etc/ssl/ocsp/web/www.example.com.ocsp': staple,
          });
          const conf = path.join(dir, 'nginx.conf');
          const temp = (name: string) => `${name}_temp_path ${path.join(dir, name)};`;
          await writeFile(
            conf,
            [
              'worker_processes 1;',
              `pid ${path.join(dir, 'nginx.pid')};`,
              `error_log ${path.join(dir, 'error.log')} info;`,
              'events { worker_connections 64; }',
              'http {',
              '  access_log off;',
              ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp),
              site,
              '}',
              '',
            ].join('\n'),
          );
          const base = ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')];
          // What `systemctl reload nginx` runs (Debian's nginx.service ExecReload), for this instance.
          reloadCommand = [tools.nginx as string, ...base, '-s', 'reload'].map(shellQuote).join(' ');
          const server = launch('nginx', tools.nginx as string, [...base, '-g', 'daemon off;']);
          await waitForPort(port, server);
        });

        it('staples the pulled file on the first handshake', async () => {
          await expectStapled(['-connect', `127.0.0.1:${port}`], staple);
        });

        it("serves a renewal after the pull runs nginx's reload (nginx -s reload)", async () => {
          const before = await stapleProducedAt(staple);
          await renew('force');
          const r = await pull(dest, ['--reload', reloadCommand]);
          expect(r.code, r.stderr).toBe(0);
          expect(r.stderr).toContain('reloading: ');
          const after = await stapleProducedAt(staple);
          expect(after).not.toBe(before);
          // The reload is asynchronous: old workers may serve a handshake or two meanwhile.
          await eventually(async () => (await status(['-connect', `127.0.0.1:${port}`])).producedAt, after);
        });
      },
    );

    if (!tools.haproxy) skipped('HAProxy recipe', 'haproxy is not installed (Debian: haproxy)');
    describe.skipIf(!tools.haproxy)(
      'HAProxy: <crt>.ocsp beside the certificate (host/examples/haproxy-ocsp.cfg)',
      () => {
        let port: number;
        let sock: string;
        let hapDest: string;
        let hapStaple: string;
        /** Pulls into HAProxy's own staples directory, as the docs/hosts.md recipe does. */
        const pullForHaproxy = (extra: string[] = []) =>
          pull(hapDest, ['--prefix', 'staples/web/', ...extra]);
        const reloadWith = (template: string) =>
          template
            .replaceAll('/usr/local/sbin/haproxy-ocsp-push.sh', PUSH_SCRIPT)
            .replaceAll('/run/haproxy/admin.sock', sock);

        beforeAll(async () => {
          port = await freePort();
          const dir = path.join(work, 'haproxy');
          await mkdir(path.join(dir, 'certs'), { recursive: true });
          sock = path.join(dir, 'admin.sock');
          hapDest = path.join(work, 'ocsp-haproxy');
          hapStaple = path.join(hapDest, 'good.ocsp');
          const r = await pullForHaproxy();
          expect(r.code, r.stderr).toBe(0);
          const crt = path.join(dir, 'certs', 'good.pem');
          await copyFile(pki.leaves.good.bundle, crt); // leaf + intermediate + key
          await symlink(hapStaple, `${crt}.ocsp`);
          await startHaproxyExample(dir, { crt, sock, port });
        });

        it('loads <crt>.ocsp at startup: the first handshake is stapled', async () => {
          await expectStapled(['-connect', `127.0.0.1:${port}`], hapStaple);
        });

        it('runtime API: "set ssl ocsp-response <base64>" on the stats socket replaces it without a restart', async () => {
          const version = execFileSync(tools.haproxy as string, ['-v'], { encoding: 'utf8' });
          expect(version).toMatch(/^HA-?Proxy version \d+\.\d+/);
          await renew('force');
          const r = await pullForHaproxy();
          expect(r.code, r.stderr).toBe(0);
          const after = await stapleProducedAt(hapStaple);
          expect((await status(['-connect', `127.0.0.1:${port}`])).producedAt).not.toBe(after);
          const der = await readFile(hapStaple);
          const reply = await unixRequest(sock, `set ssl ocsp-response ${der.toString('base64')}\n`);
          expect(reply).toContain('OCSP Response updated');
          expect((await status(['-connect', `127.0.0.1:${port}`])).producedAt).toBe(after);
        });

        it.runIf(tools.socat || tools.ncUnix)(
          `the documented reload command (haproxy-ocsp-push.sh) serves a renewal${tools.socat || tools.ncUnix ? '' : ' (skipped: neither socat nor nc -U)'}`,
          async () => {
            await renew('force');
            const r = await pullForHaproxy(['--reload', reloadWith(HAPROXY_RELOAD)]);
            expect(r.code, r.stderr).toBe(0);
            expect((await status(['-connect', `127.0.0.1:${port}`])).producedAt).toBe(
              await stapleProducedAt(hapStaple),
            );
          },
        );

        it.runIf(tools.socat || tools.ncUnix)(
          `a staple HAProxy refuses is reported, the others pushed, and never retried${tools.socat || tools.ncUnix ? '' : ' (skipped: neither socat nor nc -U)'}`,
          async () => {
            // A valid staple for a certificate HAProxy does not serve ("does not match any
            // certificate"), pulled with a renewal of the one it serves: each is pushed on its own.
            const der = await makeStaple(pki, pki.leaves.mustStaple.cert, path.join(work, 'other.ocsp'));
            await admin.send(
              new PutObjectCommand({ Bucket: BUCKET, Key: 'staples/other/mustStaple.ocsp', Body: der }),
            );
            await renew('force');
            const mixed = path.join(work, 'ocsp-haproxy-mixed');
            const first = await pull(mixed, ['--reload', reloadWith(HAPROXY_RELOAD)]);
            expect(first.code, first.stderr).toBe(0);
            expect(first.stderr).toMatch(/haproxy-ocsp-push: HAProxy refused \S*other\/mustStaple\.ocsp: /);
            expect(first.stderr).toContain('pushed 1, refused 1');
            expect(await readFile(path.join(mixed, 'other', 'mustStaple.ocsp'))).toEqual(der); // installed
            expect((await status(['-connect', `127.0.0.1:${port}`])).producedAt).toBe(
              await stapleProducedAt(path.join(mixed, 'web', 'good.ocsp')),
            );
            // Nothing is left pending: the next pull neither reloads nor sends the refused staple.
            expect(existsSync(path.join(mixed, '.ocsp-state', 'reload-pending'))).toBe(false);
            const next = await pull(mixed, ['--reload', reloadWith(HAPROXY_RELOAD)]);
            expect(next.code, next.stderr).toBe(0);
            expect(next.stderr).not.toContain('haproxy-ocsp-push');
          },
        );

        it('the push script exits 1, to be retried, when HAProxy cannot be reached', async () => {
          const r = await runPush(path.join(work, 'no-such.sock'), hapStaple);
          expect(r.code).toBe(1);
          expect(r.stderr).toContain('haproxy-ocsp-push: cannot reach HAProxy at');
        });

        describe('the local command: renew --extension .pem.ocsp beside the crt, pushed by the runtime API', () => {
          let localPort: number;
          let localSock: string;
          let crt: string;
          const stateHome = () => path.join(work, 'cli-state');
          const renewLocally = (extra: string[]) =>
            runToEnd(
              process.execPath,
              [
                DEV_BIN,
                ...HAPROXY_LOCAL_RENEW.map((a) => a.replaceAll('/etc/haproxy/certs', path.dirname(crt))),
                ...extra,
              ],
              {
                env: {
                  ...process.env,
                  XDG_STATE_HOME: stateHome(),
                  OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
                },
              },
            );

          beforeAll(async () => {
            localPort = await freePort();
            const dir = path.join(work, 'haproxy-local');
            await mkdir(path.join(dir, 'certs'), { recursive: true });
            localSock = path.join(dir, 'admin.sock');
            crt = path.join(dir, 'certs', 'good.pem');
            await copyFile(pki.leaves.good.bundle, crt);
            // The staple must be there when HAProxy starts.
            const first = await renewLocally([]);
            expect(first.code, first.stderr).toBe(0);
            expect(existsSync(`${crt}.ocsp`)).toBe(true);
            await startHaproxyExample(dir, { crt, sock: localSock, port: localPort });
          });

          it('staples <crt>.ocsp on the first handshake', async () => {
            await expectStapled(['-connect', `127.0.0.1:${localPort}`], `${crt}.ocsp`);
          });

          it.runIf(tools.socat || tools.ncUnix)(
            `a renewal is pushed through the runtime API: exactly OCSP_CHANGED${tools.socat || tools.ncUnix ? '' : ' (skipped: neither socat nor nc -U)'}`,
            async () => {
              await new Promise((r) => setTimeout(r, 1_100)); // openssl ocsp signs a new second
              const before = await stapleProducedAt(`${crt}.ocsp`);
              const reload = HAPROXY_RELOAD.replace(
                '/usr/local/sbin/haproxy-ocsp-push.sh',
                PUSH_SCRIPT,
              ).replace('/run/haproxy/admin.sock', localSock);
              const r = await renewLocally(['--force', '--reload', reload]);
              expect(r.code, r.stderr).toBe(0);
              lastRenewal = Date.now();
              const after = await stapleProducedAt(`${crt}.ocsp`);
              expect(after).not.toBe(before);
              expect((await status(['-connect', `127.0.0.1:${localPort}`])).producedAt).toBe(after);
            },
          );
        });
      },
    );

    if (!tools.exim) skipped('Exim recipe', 'exim is not installed (Debian: exim4-daemon-light)');
    else if (!isRoot)
      skipped('Exim recipe', 'the test daemon needs root: exim -C keeps its privilege only for root');
    describe.skipIf(!tools.exim || !isRoot)('Exim: tls_ocsp_file (host/examples/exim-ocsp.conf)', () => {
      let port: number;
      let pidFile: string;

      beforeAll(async () => {
        const exim = tools.exim as string;
        port = await freePort();
        const dir = path.join(work, 'exim');
        await mkdir(dir, { mode: 0o755 });
        await chmod(dir, 0o755);
        const fullchain = path.join(dir, 'fullchain.pem');
        const key = path.join(dir, 'key.pem');
        await writeFile(
          fullchain,
          (await readFile(pki.leaves.good.cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8')),
        );
        await copyFile(pki.leaves.good.key, key);
        await Promise.all([chmod(fullchain, 0o644), chmod(key, 0o644)]); // a test key: Exim's user reads it
        pidFile = path.join(dir, 'exim.pid');
        const conf = path.join(dir, 'exim.conf');
        const recipe = instantiate(await readFile(path.join(examples, 'exim-ocsp.conf'), 'utf8'), {
          '/etc/exim4/mail.example.com.fullchain.pem': fullchain,
          '/etc/exim4/mail.example.com.key': key,
          '/etc/ssl/ocsp/mail/mail.example.com.ocsp': staple,
        });
        await writeFile(
          conf,
          [
            'primary_hostname = mail.test',
            'keep_environment =',
            `spool_directory = ${path.join(dir, 'spool')}`,
            `log_file_path = ${path.join(dir, 'log')}/%slog`,
            `pid_file_path = ${pidFile}`,
            'local_interfaces = <; 127.0.0.1',
            `daemon_smtp_ports = ${port}`,
            recipe,
            'begin acl',
            'begin routers',
            'begin transports',
            '',
          ].join('\n'),
        );
        await chmod(conf, 0o644); // Exim refuses a -C file others may write
        // Exim writes its log and spool as its own user (Debian-exim).
        const user = /exim_user = (\S+)/.exec(
          execFileSync(exim, ['-C', conf, '-bP', 'exim_user'], { encoding: 'utf8' }),
        )?.[1];
        if (!user) throw new Error('exim -bP exim_user printed no user');
        const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
        const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
        for (const sub of ['log', 'spool']) {
          await mkdir(path.join(dir, sub), { recursive: true }); // -bP may have made the spool already
          await chown(path.join(dir, sub), uid, gid);
        }
        // As root, -C keeps root privilege (the daemon binds, then serves as the Exim user).
        const server = launch('exim', exim, ['-C', conf, '-bdf']);
        await waitForPort(port, server);
      });

      it('STARTTLS: s_client -starttls smtp -status sees successful, good', async () => {
        await expectStapled(['-starttls', 'smtp', '-connect', `127.0.0.1:${port}`], staple);
      });

      it('the local command: renew into its tls_ocsp_file, then SIGHUP; Exim serves the renewal', async () => {
        const certs = path.join(work, 'exim-certs');
        await mkdir(certs, { recursive: true });
        await copyFile(pki.leaves.good.bundle, path.join(certs, 'good.pem'));
        await new Promise((r) => setTimeout(r, 1_100)); // openssl ocsp signs a new second
        const before = await stapleProducedAt(staple);
        const r = await runToEnd(
          process.execPath,
          [DEV_BIN, 'renew', '--certs', certs, '--staples', path.dirname(staple), '--force',
            '--reload', EXIM_LOCAL_RELOAD.replace('/run/exim4/exim.pid', pidFile)], // prettier-ignore
          {
            env: {
              ...process.env,
              XDG_STATE_HOME: path.join(work, 'cli-state'),
              OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
            },
          },
        );
        expect(r.code, r.stderr).toBe(0);
        lastRenewal = Date.now(); // the next renewal must sign in a later second than this one
        const after = await stapleProducedAt(staple);
        expect(after).not.toBe(before);
        await eventually(
          async () => (await status(['-starttls', 'smtp', '-connect', `127.0.0.1:${port}`])).producedAt,
          after,
        );
      });

      it('serves a renewal after the pull sends SIGHUP (what systemctl reload exim4 does)', async () => {
        const before = await stapleProducedAt(staple);
        await renew('force');
        const r = await pull(dest, ['--reload', `kill -HUP "$(cat ${shellQuote(pidFile)})"`]);
        expect(r.code, r.stderr).toBe(0);
        const after = await stapleProducedAt(staple);
        expect(after).not.toBe(before);
        await eventually(
          async () => (await status(['-starttls', 'smtp', '-connect', `127.0.0.1:${port}`])).producedAt,
          after,
        );
      });
    });

    it('stops every server it started: no process left (their pids, and pgrep -f on the work dir)', async () => {
      await stopServers();
      if (tools.nginx) expect(seenPids.size).toBeGreaterThan(servers.length); // nginx's worker was seen
      expect([...seenPids].filter(isRunning)).toEqual([]);
      // Every server's command line names a file in `work` (nginx workers are covered by pid).
      expect(processes().filter((p) => p.state !== 'Z' && p.cmdline.includes(work))).toEqual([]);
      if (findTool('pgrep')) {
        const pgrep = await exec('pgrep', ['-f', work]).then(
          (r) => r.stdout.trim(),
          (err: { code?: number; stdout?: string }) => (err.code === 1 ? '' : `pgrep failed: ${err.stdout}`),
        );
        expect(pgrep).toBe('');
      }
    });
  },
);

describe('host/examples are the files the docs name, and are valid', () => {
  const hostsDoc = readFileSync(path.join(repoRoot, 'docs', 'hosts.md'), 'utf8');
  const cliDoc = readFileSync(path.join(repoRoot, 'docs', 'cli.md'), 'utf8');
  const exampleFiles = [
    'ocsp-pull.cron',
    'ocsp-pull.service',
    'ocsp-pull.timer',
    'nginx-ocsp.conf',
    'haproxy-ocsp.cfg',
    'exim-ocsp.conf',
    'exim4.conf.localmacros',
    'ocsp-renewer.cron',
    'ocsp-renewer.service',
    'ocsp-renewer-once.service',
    'ocsp-renewer-once.timer',
  ];

  it('lists every file of host/examples', () => {
    expect(readdirSync(examples).sort()).toEqual([...exampleFiles].sort());
  });

  // The docs link the files rather than paste them, so there is one copy to keep true
  // (test/docs.test.ts checks that every relative link resolves).
  it.for(exampleFiles)('docs/hosts.md or docs/cli.md links host/examples/%s', (file, { expect }) => {
    const link = `](../host/examples/${file})`;
    expect(hostsDoc.includes(link) || cliDoc.includes(link), `no doc links host/examples/${file}`).toBe(true);
  });

  it('docs/hosts.md shows the HAProxy and Exim commands the tests run', () => {
    expect(hostsDoc.includes(`--reload '${HAPROXY_RELOAD}'`), 'docs/hosts.md lacks the HAProxy reload').toBe(
      true,
    );
    expect(hostsDoc.includes(HAPROXY_LOCAL_RENEW.join(' ')), 'docs/hosts.md lacks the HAProxy renew').toBe(
      true,
    );
    expect(hostsDoc.includes(`--reload '${EXIM_LOCAL_RELOAD}'`), 'docs/hosts.md lacks the Exim reload').toBe(
      true,
    );
  });

  it.runIf(existsSync('/usr/bin/shellcheck'))(
    'host/haproxy-ocsp-push.sh is shellcheck-clean as POSIX sh',
    () => {
      expect(execFileSync('shellcheck', ['-s', 'sh', PUSH_SCRIPT], { encoding: 'utf8' })).toBe('');
    },
  );

  it.runIf(tools.systemdAnalyze)(
    `systemd-analyze verify accepts the service and timer${tools.systemdAnalyze ? '' : ' (skipped: no systemd-analyze; Debian: systemd)'}`,
    async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'ocsp-units-'));
      try {
        const service = (await readFile(path.join(examples, 'ocsp-pull.service'), 'utf8')).replace(
          '/usr/local/sbin/pull-staples.sh',
          path.join(repoRoot, 'host', 'pull-staples.sh'),
        );
        await writeFile(path.join(dir, 'ocsp-pull.service'), service);
        await copyFile(path.join(examples, 'ocsp-pull.timer'), path.join(dir, 'ocsp-pull.timer'));
        const r = await exec(tools.systemdAnalyze as string, [
          'verify',
          path.join(dir, 'ocsp-pull.service'),
          path.join(dir, 'ocsp-pull.timer'),
        ]);
        expect(r.stderr.trim()).toBe('');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  it.runIf(tools.exim && existsSync('/etc/exim4/exim4.conf.template'))(
    "Debian's packaged Exim takes exim4.conf.localmacros: tls_ocsp_file and the TLS files are set",
    async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'ocsp-exim-debian-'));
      try {
        // What update-exim4.conf builds for the non-split configuration: localmacros, then the template.
        const conf = path.join(dir, 'exim4.conf');
        await writeFile(
          conf,
          (await readFile(path.join(examples, 'exim4.conf.localmacros'), 'utf8')) +
            (await readFile('/etc/exim4/exim4.conf.template', 'utf8')),
          { mode: 0o644 },
        );
        const r = await exec(tools.exim as string, [
          '-C',
          conf,
          '-bP',
          'tls_ocsp_file',
          'tls_certificate',
          'tls_privatekey',
        ]);
        expect(r.stdout).toContain('tls_ocsp_file = /etc/ssl/ocsp/mail/mail.example.com.ocsp');
        expect(r.stdout).toContain('tls_certificate = /etc/exim4/mail.example.com.fullchain.pem');
        expect(r.stdout).toContain('tls_privatekey = /etc/exim4/mail.example.com.key');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------

/** A skipped test whose name says why (describe.skipIf alone shows nothing). */
function skipped(what: string, why: string): void {
  it.skip(`${what}: skipped, ${why}`, () => undefined);
}

/** Runs the Lambda handler; a forced run waits for a new second so Produced At changes. */
async function renew(mode: 'scheduled' | 'force'): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= Math.floor(lastRenewal / 1000)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const ddb = dynamo.client();
  const handler = createHandler({
    env: { ...s3.env, BUCKET, STATE_TABLE: BUCKET, OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1' },
    s3: admin,
    dynamodb: ddb,
    ...silentTelemetry(),
  });
  // A force of the one certificate runs inline (a force of everything would start the map).
  const report = await handler(mode === 'force' ? { mode, keys: ['web/good.pem'] } : { mode }).finally(() =>
    ddb.destroy(),
  );
  lastRenewal = Date.now();
  expect(report.counts.renewed).toBe(1);
}

/** host/pull-staples.sh into `into`, with the issuer check on. */
function pull(into: string, extra: string[] = []) {
  return runPull(
    [
      '--bucket',
      BUCKET,
      '--dest',
      into,
      '--endpoint-url',
      s3.endpoint,
      '--aws-cli',
      AWS_V2,
      '--issuer',
      pki.intermediate.cert,
      '--ca-file',
      pki.chain,
      ...extra,
    ],
    {
      shell: ['sh'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME ?? work,
        AWS_ACCESS_KEY_ID: s3.env.AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: s3.env.AWS_SECRET_ACCESS_KEY,
        AWS_REGION: s3.env.AWS_REGION,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: path.join(work, 'no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-aws-credentials'),
      },
      timeoutMs: 30_000,
    },
  );
}

interface SeenStatus {
  response: string | undefined;
  cert: string | undefined;
  producedAt: string | undefined;
  verified: boolean;
}

/** What `openssl s_client -status` saw: the stapled response's status, cert status and Produced At. */
async function status(args: string[]): Promise<SeenStatus> {
  const out = await sClient([...args, '-status', '-CAfile', pki.root.cert]);
  return {
    response: /OCSP Response Status: (\w+)/.exec(out)?.[1],
    cert: /Cert Status: (\w+)/.exec(out)?.[1],
    producedAt: producedAt(out),
    verified: /Verify return code: 0 \(ok\)/.test(out),
  };
}

/** A client connecting with `args` gets the staple in `file`: successful, good, chain verified. */
async function expectStapled(args: string[], file: string): Promise<void> {
  expect(await status(args)).toEqual({
    response: 'successful',
    cert: 'good',
    producedAt: await stapleProducedAt(file),
    verified: true,
  });
}

async function stapleProducedAt(file: string): Promise<string | undefined> {
  return producedAt(await openssl(['ocsp', '-respin', file, '-resp_text', '-noverify']));
}

/** host/haproxy-ocsp-push.sh on one staple, as a pull's reload runs it. */
function runPush(socketPath: string, file: string) {
  return runToEnd('sh', [PUSH_SCRIPT, socketPath], {
    env: { ...process.env, OCSP_DEST: path.dirname(file), OCSP_INSTALLED: path.basename(file) },
  });
}

/** Sends one command to a unix socket (HAProxy's runtime API) and returns the whole reply. */
function unixRequest(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = '';
    const sock = connect({ path: socketPath }, () => sock.end(command));
    sock.setTimeout(5_000, () => sock.destroy(new Error(`no reply from ${socketPath}`)));
    sock.on('data', (d: Buffer) => (reply += d.toString()));
    sock.once('error', reject);
    sock.once('close', (hadError) => {
      if (!hadError) resolve(reply);
    });
  });
}

/** Replaces each key of `values` in `text`; a key not found is an error (the example changed). */
function instantiate(text: string, values: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(values)) {
    if (!out.includes(from)) throw new Error(`host/examples: "${from}" not found; update the test`);
    out = out.replaceAll(from, to);
  }
  return out;
}

function shellQuote(s: string): string {
  return /^[\w./:=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `probe` until it returns `want` (10 s at most); fails with the last value seen. */
async function eventually<T>(probe: () => Promise<T>, want: T): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last = await probe();
  while (last !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    last = await probe();
  }
  expect(last).toBe(want);
}

// --- server processes ----------------------------------------------------------------------------

interface Server {
  name: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<void>;
}

function launch(name: string, command: string, args: string[]): Server {
  // stdin stays an open pipe: openssl s_server stops at end of input.
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const append = (c: Buffer) => (output = (output + c.toString()).slice(-32_768));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  child.once('error', (err) => (output += `\nspawn error: ${err.message}`));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const server: Server = { name, child, output: () => output, exited };
  servers.push(server);
  if (child.pid) seenPids.add(child.pid);
  return server;
}

/** Waits until `port` accepts a TCP connection (10 s at most), noting the server's processes. */
async function waitForPort(port: number, server: Server): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new Error(`${server.name} exited (${server.child.exitCode}): ${server.output()}`);
    }
    if (await canConnect(port)) break;
    if (Date.now() > deadline) throw new Error(`${server.name} not listening on ${port}: ${server.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  noteDescendants(server);
}

/**
 * HAProxy from host/examples/haproxy-ocsp.cfg (its config written in `dir`): serving `crt`, its
 * runtime API on `sock`, listening on 127.0.0.1:`port`; returns once it accepts connections.
 */
async function startHaproxyExample(
  dir: string,
  at: { crt: string; sock: string; port: number },
): Promise<void> {
  const cfg = path.join(dir, 'haproxy.cfg');
  await writeFile(
    cfg,
    instantiate(await readFile(path.join(examples, 'haproxy-ocsp.cfg'), 'utf8'), {
      '/run/haproxy/admin.sock': at.sock,
      'bind :443 ssl': `bind 127.0.0.1:${at.port} ssl`,
      '/etc/haproxy/certs/www.example.com.pem': at.crt,
    }),
  );
  await waitForPort(at.port, launch('haproxy', tools.haproxy as string, ['-f', cfg, '-db']));
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.setTimeout(1_000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(false));
  });
}

/** Adds the server's current descendants (nginx workers, Exim's per-connection processes) to seenPids. */
function noteDescendants(server: Server): void {
  const all = processes();
  const queue = server.child.pid ? [server.child.pid] : [];
  while (queue.length) {
    const pid = queue.shift() as number;
    seenPids.add(pid);
    queue.push(...all.filter((p) => p.ppid === pid).map((p) => p.pid));
  }
}

interface ProcessInfo {
  pid: number;
  ppid: number;
  /** R, S, D, Z (zombie), … */
  state: string;
  cmdline: string;
}

/** The processes in /proc (Linux), read directly so the check needs no procps. */
function processes(): ProcessInfo[] {
  const list: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state = '', ppid = '0'] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      list.push({ pid: Number(name), ppid: Number(ppid), state, cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return list;
}

async function stopServers(): Promise<void> {
  for (const server of servers) noteDescendants(server);
  await Promise.all(
    servers.map(async (server) => {
      const { child } = server;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await server.exited;
        clearTimeout(timer);
      }
    }),
  );
  // Children of a server go away with it; give them a moment.
  const deadline = Date.now() + 5_000;
  while ([...seenPids].some(isRunning) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A live process (a zombie waiting for its parent to reap it is not running). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
