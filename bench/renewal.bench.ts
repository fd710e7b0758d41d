/**
 * `npm run bench`: throughput of the pieces a large renewal spends its CPU on, measured on the
 * shared OCSP vectors (aws-lc/s2n test PKI: RSA-2048 CA, delegated responder), no network.
 *
 * Targets (2-core CI machine, Node 20): validation of a parsed response ≥ 5 000/s; a forced
 * renewal of 2 000 certificates with an instant responder ≥ 300 certificates/s; a quiet run
 * (state trusted, nothing due) ≥ 20 000 certificates/s. The bench exits 1 when a target is missed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { clearCertificateCache, parseCertificates } from '../lambda/core/certificate.js';
import { parseOcspResponse } from '../lambda/core/ocsp-response.js';
import type { CertificateSource, StapleStore } from '../lambda/renew/ports.js';
import { run, type RunState } from '../lambda/renew/run.js';
import { validateResponse, ValidationCache } from '../lambda/core/validate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const vectors = process.env.OCSP_VECTORS_DIR ?? path.join(root, 'test', 'fixtures', 'ocsp-vectors');
const read = (f: string) => readFileSync(path.join(vectors, 'aws-lc-s2n', f));

const leafPem = read('rsa_cert.pem');
const issuerPem = read('ca_cert.pem');
const responseDer = read('ocsp_response.der'); // delegated signer, good, nextUpdate 2031
const [leaf] = parseCertificates(leafPem);
const [issuer] = parseCertificates(issuerPem);
// Inside the response's 10-year window and before every certificate's jittered refresh point.
const now = new Date('2022-01-01T00:00:00Z');

interface Row {
  name: string;
  perSecond: number;
  target?: number;
}
const rows: Row[] = [];

function measure(name: string, iterations: number, fn: () => void, target?: number) {
  for (let i = 0; i < Math.min(50, iterations); i++) fn(); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push({ name, perSecond: iterations / seconds, target });
}

async function measureAsync(name: string, count: number, fn: () => Promise<void>, target?: number) {
  const start = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push({ name, perSecond: count / seconds, target });
}

measure('parse OCSP response (pkijs/asn1js, once per response)', 2000, () => {
  parseOcspResponse(responseDer);
});
const parsed = parseOcspResponse(responseDer);
const cache = new ValidationCache();
measure(
  'validate a parsed response (node:crypto, cached responder check)',
  20000,
  () => {
    if (!validateResponse(parsed, { cert: leaf, issuer, now, cache }).valid) throw new Error('invalid');
  },
  5000,
);
measure('parse + validate, cold cache each time', 1000, () => {
  validateResponse(parseOcspResponse(responseDer), { cert: leaf, issuer, now, cache: new ValidationCache() });
});

// For comparison: pkijs's own verify over WebCrypto, the naive path.
const basicDer = (() => {
  const outer = new pkijs.OCSPResponse({ schema: asn1js.fromBER(new Uint8Array(responseDer)).result });
  return outer.responseBytes!.response.valueBlock.valueHexView;
})();
const issuerAsn = issuer!.asn;
{
  const iterations = 200;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const basic = pkijs.BasicOCSPResponse.fromBER(basicDer);
    await basic.verify({ trustedCerts: [issuerAsn] });
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push({
    name: 'naive pkijs fromBER + verify({trustedCerts}) (comparison)',
    perSecond: iterations / seconds,
  });
}

// Whole runs over an in-memory source and store with an instant responder.
const N = 2000;
const bundle = Buffer.concat([leafPem, issuerPem]);
const source: CertificateSource = {
  description: 'memory',
  list: async () => Array.from({ length: N }, (_, i) => ({ key: `c${i}.pem`, tag: 'v1' })),
  // Every certificate here has the same bytes; clearing the parse cache on each read makes every
  // leaf (and its intermediate) cost a real parse, as distinct certificates would.
  read: async () => {
    clearCertificateCache();
    return bundle;
  },
};
const staples = new Map<string, Buffer>();
const store: StapleStore = {
  description: 'memory',
  get: async (key) => {
    const der = staples.get(key);
    return der && { der, tag: 't' };
  },
  put: async (key, der) => {
    staples.set(key, der);
    return 't';
  },
  list: async () => new Map([...staples.keys()].map((k) => [k, 't'])),
  delete: async (key) => void staples.delete(key),
  putMarker: async (key, text) => void staples.set(key, Buffer.from(text)),
};
const state: RunState = new Map();
const deps = {
  source,
  store,
  transport: async () => ({ der: responseDer }),
  clock: () => now,
  state,
  trustState: true,
};
await measureAsync(
  `forced renewal of ${N} certificates, instant responder (concurrency 8)`,
  N,
  async () => {
    const report = await run(deps, { force: true, concurrency: 8 });
    if (report.counts.renewed !== N) throw new Error(`renewed ${report.counts.renewed}`);
  },
  300,
);
await measureAsync(
  `quiet run over ${N} certificates (state trusted, nothing due)`,
  N,
  async () => {
    const report = await run(deps, { concurrency: 8 });
    if (report.counts.fresh !== N) throw new Error(`fresh ${report.counts.fresh}`);
  },
  20000,
);

let missed = 0;
console.log(`Node ${process.version}, ${new Date().toISOString()}\n`);
for (const row of rows) {
  const verdict =
    row.target === undefined
      ? ''
      : row.perSecond >= row.target
        ? `  ok (target ≥ ${row.target}/s)`
        : `  MISSED (target ≥ ${row.target}/s)`;
  if (row.target !== undefined && row.perSecond < row.target) missed++;
  console.log(`${row.perSecond.toFixed(0).padStart(9)}/s  ${row.name}${verdict}`);
}
process.exitCode = missed ? 1 : 0;
