/**
 * Test PKI built at test time with the `openssl` CLI (OpenSSL 3.0+):
 *
 *   root CA (self-signed) -> intermediate CA (pathlen:0) -> leaves, delegated OCSP signers
 *
 * The intermediate is run as an `openssl ca` so that its `index.txt` database can back an
 * `openssl ocsp` responder (see ./openssl-responder.ts). Nothing is mocked and nothing is checked in.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const LEAF_NAMES = [
  'good',
  'revoked',
  'unknownToCa',
  'expired',
  'mustStaple',
  'noOcsp',
  'ec',
] as const;
export type LeafName = (typeof LEAF_NAMES)[number];

export interface CertAndKey {
  /** PEM certificate (absolute path). */
  cert: string;
  /** PEM PKCS#8 private key (absolute path). */
  key: string;
}

export interface TestLeaf extends CertAndKey {
  /** leaf + intermediate + the leaf's PRIVATE KEY block (keys in a bundle must be ignored). */
  bundle: string;
  /** Serial as `openssl x509 -serial -noout` prints it (upper-case hex, no `serial=`). */
  serialHex: string;
}

export interface MakeTestPkiOptions {
  /** Directory to write into (created if missing). Default: fresh `fs.mkdtemp` under `os.tmpdir()`. */
  dir?: string;
  /** AIA OCSP URL put into leaves. Default: `http://127.0.0.1:<free port>/` (see `TestPki.ocspPort`). */
  ocspUrl?: string;
  /** AIA caIssuers URL put into leaves. Default: `<origin of ocspUrl>/intermediate.der`. */
  caIssuersUrl?: string;
}

export interface TestPki {
  dir: string;
  root: CertAndKey;
  intermediate: CertAndKey;
  /** Delegated OCSP signer: EKU OCSPSigning + id-pkix-ocsp-nocheck, issued by the intermediate. */
  signer: CertAndKey;
  /** Issued by the intermediate, identical to `signer` but WITHOUT the OCSPSigning EKU. */
  signerNoEku: CertAndKey;
  /** The intermediate's `openssl ca` database (every leaf except `unknownToCa`; `revoked` is R). */
  index: string;
  leaves: Record<LeafName, TestLeaf>;
  /** intermediate + root, PEM. */
  chain: string;
  /** DER copies. */
  goodDer: string;
  intermediateDer: string;
  /** URLs baked into the leaves' AIA extension. */
  ocspUrl: string;
  caIssuersUrl: string;
  /** Port of `ocspUrl` when it is a local http URL with an explicit port (start the responder there). */
  ocspPort: number | undefined;
  /** Generated openssl config (CA sections + extension sections). */
  config: string;
  /** Removes `dir` if this function created it; a caller-supplied `dir` is left alone. */
  cleanup(): Promise<void>;
}

/** Runs `openssl <args>` without a shell; rejects with openssl's stderr on failure. */
export async function openssl(args: readonly string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync('openssl', [...args], { cwd, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** Reserves a currently free TCP port on 127.0.0.1 (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolvePort(port) : reject(new Error('could not get a free port'))));
    });
  });
}

/** `openssl ca -startdate/-enddate` format: YYYYMMDDHHMMSSZ (GeneralizedTime). */
function caDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** Values are pasted into an openssl config file; refuse anything its parser would reinterpret. */
function cnfValue(v: string): string {
  if (/[$\\#"'\n\r]/.test(v)) throw new Error(`unsupported character in openssl config value: ${v}`);
  return v;
}

const DAY_MS = 86_400_000;

interface LeafSpec {
  name: LeafName;
  keyType: 'rsa' | 'ec';
  /** `int_ca` = listed in index.txt; `int_unlisted` = same CA key, separate (ignored) database. */
  caName: 'int_ca' | 'int_unlisted';
  aia: boolean;
  mustStaple: boolean;
  startdate: string;
  enddate: string;
}

export async function makeTestPki(options?: MakeTestPkiOptions): Promise<TestPki>;
export async function makeTestPki(dir?: string, options?: Omit<MakeTestPkiOptions, 'dir'>): Promise<TestPki>;
export async function makeTestPki(
  dirOrOptions?: string | MakeTestPkiOptions,
  maybeOptions: Omit<MakeTestPkiOptions, 'dir'> = {},
): Promise<TestPki> {
  const opts: MakeTestPkiOptions =
    typeof dirOrOptions === 'string' ? { ...maybeOptions, dir: dirOrOptions } : { ...dirOrOptions };

  const ownsDir = opts.dir === undefined;
  const dir = ownsDir ? await mkdtemp(join(tmpdir(), 'ocsp-renewer-pki-')) : resolve(opts.dir as string);
  try {
    return await build(dir, opts, ownsDir);
  } catch (err) {
    if (ownsDir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function build(dir: string, opts: MakeTestPkiOptions, ownsDir: boolean): Promise<TestPki> {
  const ocspUrl = opts.ocspUrl ?? `http://127.0.0.1:${await freePort()}/`;
  const caIssuersUrl = opts.caIssuersUrl ?? new URL('/intermediate.der', ocspUrl).toString();
  const parsed = new URL(ocspUrl);
  const ocspPort = parsed.protocol === 'http:' && parsed.port ? Number(parsed.port) : undefined;

  const p = (f: string): string => join(dir, f);
  await mkdir(p('newcerts'), { recursive: true });

  const now = Date.now();
  const validFrom = caDate(new Date(now - DAY_MS));
  const leafUntil = caDate(new Date(now + 365 * DAY_MS));
  const caFrom = caDate(new Date(now - 2 * DAY_MS));
  const caUntil = caDate(new Date(now + 3650 * DAY_MS));

  const leafSpecs: LeafSpec[] = LEAF_NAMES.map((name) => ({
    name,
    keyType: name === 'ec' ? 'ec' : 'rsa',
    caName: name === 'unknownToCa' ? 'int_unlisted' : 'int_ca',
    aia: name !== 'noOcsp',
    mustStaple: name === 'mustStaple',
    startdate: name === 'expired' ? '20200101000000Z' : validFrom,
    enddate: name === 'expired' ? '20210101000000Z' : leafUntil,
  }));

  // --- config: three `openssl ca` sections sharing one file, plus extension sections -------------
  const caSection = (name: string, db: string, serial: string, cert: string, key: string): string => `
[ ${name} ]
database         = ${cnfValue(p(db))}
new_certs_dir    = ${cnfValue(p('newcerts'))}
serial           = ${cnfValue(p(serial))}
certificate      = ${cnfValue(p(cert))}
private_key      = ${cnfValue(p(key))}
default_md       = sha256
default_days     = 365
default_crl_days = 1
policy           = policy_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
preserve         = no
`;
  const leafExt = (s: LeafSpec): string => {
    const lines = [
      `[ ext_${s.name} ]`,
      'basicConstraints       = critical, CA:FALSE',
      // keyEncipherment only makes sense for RSA keys.
      `keyUsage               = critical, digitalSignature${s.keyType === 'rsa' ? ', keyEncipherment' : ''}`,
      'extendedKeyUsage       = serverAuth',
      'subjectKeyIdentifier   = hash',
      'authorityKeyIdentifier = keyid:always',
      `subjectAltName         = DNS:${s.name.toLowerCase()}.test, DNS:www.${s.name.toLowerCase()}.test`,
    ];
    if (s.aia) {
      lines.push(
        `authorityInfoAccess    = OCSP;URI:${cnfValue(ocspUrl)}, caIssuers;URI:${cnfValue(caIssuersUrl)}`,
      );
    }
    if (s.mustStaple) lines.push('tlsfeature             = status_request'); // 1.3.6.1.5.5.7.1.24
    return lines.join('\n');
  };
  const signerExt = (name: string, eku: boolean): string =>
    [
      `[ ${name} ]`,
      'basicConstraints       = critical, CA:FALSE',
      'keyUsage               = critical, digitalSignature',
      ...(eku ? ['extendedKeyUsage       = OCSPSigning'] : []),
      'noCheck                = ignored', // id-pkix-ocsp-nocheck
      'subjectKeyIdentifier   = hash',
      'authorityKeyIdentifier = keyid:always',
    ].join('\n');

  const config = p('openssl.cnf');
  await writeFile(
    config,
    `# generated by test/helpers/pki.ts
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = placeholder

[ ca ]
default_ca = int_ca
${caSection('root_ca', 'root-index.txt', 'root-serial', 'root.pem', 'root.key.pem')}
${caSection('int_ca', 'index.txt', 'serial', 'intermediate.pem', 'intermediate.key.pem')}
${caSection('int_unlisted', 'unlisted-index.txt', 'serial', 'intermediate.pem', 'intermediate.key.pem')}
# Field order here is the subject DN order of issued certificates.
[ policy_any ]
countryName            = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = supplied

[ ext_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ ext_intermediate ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

${signerExt('ext_signer', true)}

${signerExt('ext_signerNoEku', false)}

${leafSpecs.map(leafExt).join('\n\n')}
`,
  );

  // Fresh databases. unique_subject=no also goes in the .attr file openssl reads next to the index.
  // Random 64-bit starting serials (even hex length, positive, no leading zero nibble).
  const serialSeed = (): string => {
    const b = randomBytes(8);
    b[0] = ((b[0] as number) & 0x7f) | 0x10;
    return b.toString('hex').toUpperCase();
  };
  for (const db of ['root-index.txt', 'index.txt', 'unlisted-index.txt']) {
    await writeFile(p(db), '');
    await writeFile(p(`${db}.attr`), 'unique_subject = no\n');
  }
  await writeFile(p('root-serial'), `${serialSeed()}\n`);
  await writeFile(p('serial'), `${serialSeed()}\n`);

  // --- keys + CSRs, in parallel (the slow part) ----------------------------------------------------
  const subjects: Array<{ name: string; cn: string; keyType: 'rsa' | 'ec' }> = [
    { name: 'root', cn: 'ocsp-renewer Test Root CA', keyType: 'rsa' },
    { name: 'intermediate', cn: 'ocsp-renewer Test Intermediate CA', keyType: 'rsa' },
    { name: 'signer', cn: 'ocsp-renewer Test OCSP Signer', keyType: 'rsa' },
    { name: 'signerNoEku', cn: 'ocsp-renewer Test OCSP Signer without EKU', keyType: 'rsa' },
    ...leafSpecs.map((s) => ({ name: s.name, cn: `${s.name.toLowerCase()}.test`, keyType: s.keyType })),
  ];
  await Promise.all(
    subjects.map(async ({ name, cn, keyType }) => {
      const key = p(`${name}.key.pem`);
      const keyArgs =
        keyType === 'ec'
          ? [
              '-algorithm',
              'EC',
              '-pkeyopt',
              'ec_paramgen_curve:P-256',
              '-pkeyopt',
              'ec_param_enc:named_curve',
            ]
          : ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
      await openssl(['genpkey', ...keyArgs, '-out', key]);
      await openssl([
        'req',
        '-new',
        '-config',
        config,
        '-key',
        key,
        '-subj',
        `/O=ocsp-renewer tests/CN=${cn}`,
        '-out',
        p(`${name}.csr`),
      ]);
    }),
  );

  // --- signing: sequential, the CA databases are not safe for concurrent writers ------------------
  const sign = async (
    caName: string,
    name: string,
    ext: string,
    start: string,
    end: string,
    extra: string[] = [],
  ) => {
    await openssl([
      'ca',
      '-batch',
      '-notext',
      '-config',
      config,
      '-name',
      caName,
      '-extensions',
      ext,
      '-startdate',
      start,
      '-enddate',
      end,
      '-in',
      p(`${name}.csr`),
      '-out',
      p(`${name}.pem`),
      ...extra,
    ]);
  };
  await sign('root_ca', 'root', 'ext_root', caFrom, caUntil, ['-selfsign', '-keyfile', p('root.key.pem')]);
  await sign('root_ca', 'intermediate', 'ext_intermediate', caFrom, caUntil);
  await sign('int_ca', 'signer', 'ext_signer', validFrom, leafUntil);
  await sign('int_ca', 'signerNoEku', 'ext_signerNoEku', validFrom, leafUntil);
  for (const s of leafSpecs) await sign(s.caName, s.name, `ext_${s.name}`, s.startdate, s.enddate);
  await openssl([
    'ca',
    '-config',
    config,
    '-name',
    'int_ca',
    '-revoke',
    p('revoked.pem'),
    '-crl_reason',
    'keyCompromise',
  ]);

  // --- derived files --------------------------------------------------------------------------------
  const rootPem = await readFile(p('root.pem'), 'utf8');
  const intermediatePem = await readFile(p('intermediate.pem'), 'utf8');
  await writeFile(p('chain.pem'), intermediatePem + rootPem);
  await openssl(['x509', '-in', p('good.pem'), '-outform', 'DER', '-out', p('good.der')]);
  await openssl(['x509', '-in', p('intermediate.pem'), '-outform', 'DER', '-out', p('intermediate.der')]);

  const leaves = {} as Record<LeafName, TestLeaf>;
  await Promise.all(
    leafSpecs.map(async ({ name }) => {
      const cert = p(`${name}.pem`);
      const key = p(`${name}.key.pem`);
      const bundle = p(`${name}.bundle.pem`);
      const [leafPem, keyPem, serialOut] = await Promise.all([
        readFile(cert, 'utf8'),
        readFile(key, 'utf8'),
        openssl(['x509', '-in', cert, '-serial', '-noout']),
      ]);
      await writeFile(bundle, leafPem + intermediatePem + keyPem);
      const serialHex = serialOut.trim().replace(/^serial=/, '');
      leaves[name] = { cert, key, bundle, serialHex };
    }),
  );

  const pair = (name: string): CertAndKey => ({ cert: p(`${name}.pem`), key: p(`${name}.key.pem`) });
  return {
    dir,
    root: pair('root'),
    intermediate: pair('intermediate'),
    signer: pair('signer'),
    signerNoEku: pair('signerNoEku'),
    index: p('index.txt'),
    leaves,
    chain: p('chain.pem'),
    goodDer: p('good.der'),
    intermediateDer: p('intermediate.der'),
    ocspUrl,
    caIssuersUrl,
    ocspPort,
    config,
    cleanup: async () => {
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
