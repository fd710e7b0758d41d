import { stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../adapters/filesystem.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import { errorMessage } from '../core/errors.js';
import { printable } from '../core/printable.js';
import { resolveIssuer } from '../renew/issuer.js';
import { MAX_OCSP_URLS, queryResponders } from '../renew/ocsp-query.js';
import { explainStaple, formatExplanation } from '../report/explain.js';
import { loadCerts, siblingReader } from './cert-files.js';
import { EXIT, type CliIo } from './command-io.js';
import { str, type Command, type FlagValues } from './flags.js';
import { httpOptions, JSON_FLAG, QUERY_FLAGS, setting } from './query-flags.js';

export function fetchCommand(io: CliIo): Command {
  return {
    name: 'fetch',
    synopsis: '<cert.pem> [--issuer <pem>] [--out <file>] [options]',
    summary: "ask the certificate's responder once and explain the answer",
    description: `Ask the certificate's OCSP responder(s) and explain every answer; --out writes the valid
one (its directory must exist). Exit 0 good, 3 revoked or unknown, 1 no valid answer, 2 usage.`,
    positionals: 1,
    flags: [
      { name: 'issuer', type: 'string', arg: 'pem', help: "the certificate's issuer" },
      { name: 'out', type: 'string', arg: 'file', help: 'write the valid staple here' },
      JSON_FLAG,
      ...QUERY_FLAGS,
    ],
    run: (values, [file]) => fetchOnce(file!, values, io),
  };
}

async function fetchOnce(file: string, values: FlagValues, io: CliIo): Promise<number> {
  const out = str(values.out);
  // Checked before asking anyone: a typo in --out must not cost a request, nor create directories.
  const outDir = out === undefined ? undefined : path.dirname(path.resolve(out));
  if (outDir !== undefined && !(await stat(outDir).catch(() => undefined))?.isDirectory()) {
    throw new Error(`fetch --out ${out}: the directory ${outDir} does not exist`);
  }
  const hash = setting('hash', values);
  const http = httpOptions(values);
  const bundle = await loadCerts(file, 'certificate');
  const leaf = bundle[0]!;
  if (leaf.ocspUrls.length === 0) throw new Error(`fetch ${file}: no OCSP URL in the certificate`);
  const pool = typeof values.issuer === 'string' ? await loadCerts(values.issuer, 'issuer') : undefined;
  const { issuer } = await resolveIssuer(leaf, bundle.slice(1), {
    pool,
    sibling: siblingReader(file),
    download: httpIssuerDownload(http),
  }).catch((err: unknown) => {
    throw new Error(`issuer ${file}: ${errorMessage(err)}`);
  });
  const { valid, attempts, notTried } = await queryResponders(leaf, issuer, httpTransport(http), {
    hash,
    nonce: values.nonce === true,
    now: () => new Date(),
    // Every answer that parsed is explained, valid or not: that is what `fetch` is for.
    onAttempt: ({ url, parsed, verdict }) => {
      if (!parsed) return;
      const explanation = explainStaple(parsed, verdict);
      io.out(
        values.json
          ? JSON.stringify({ url, ...explanation }, null, 2)
          : `url:             ${printable(url)}\n${formatExplanation(explanation)}`,
      );
    },
  });
  if (!valid) {
    io.err(
      [
        // The URLs and the responders' words come from outside: one line per attempt.
        ...attempts.map((a) => printable(`${a.stage} ${a.url}: ${a.verdict.errors.join('; ')}`)),
        ...(notTried.length
          ? [`skipped ${notTried.length} more OCSP URL(s): at most ${MAX_OCSP_URLS} are tried`]
          : []),
      ].join('\n'),
    );
    return EXIT.failed;
  }
  if (out !== undefined) {
    await writeFileAtomic(path.resolve(out), valid.der).catch((err: unknown) => {
      throw new Error(`fetch --out ${out}: cannot write the staple: ${errorMessage(err)}`, { cause: err });
    });
  }
  return valid.verdict.certStatus === 'good' ? EXIT.ok : EXIT.notGood;
}
