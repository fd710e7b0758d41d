import { parseCertificates } from '../core/certificate.js';
import { errorMessage } from '../core/errors.js';
import { printable } from '../core/printable.js';
import { judgeStaple } from '../core/validate.js';
import { type Verdict } from '../core/verdict.js';
import { resolveIssuer } from '../renew/issuer.js';
import { explainStaple, formatExplanation } from '../report/explain.js';
import { loadCerts, readCapped, siblingReader } from './cert-files.js';
import { EXIT, type CliIo } from './command-io.js';
import { str, UsageError, type Command, type FlagValues } from './flags.js';
import { JSON_FLAG } from './query-flags.js';

export function inspectCommand(io: CliIo): Command {
  return {
    name: 'inspect',
    synopsis: '<staple.der> [--cert <pem>] [--issuer <pem>] [--at <ISO-8601>] [--json]',
    summary: 'parse, validate and explain a staple (offline)',
    description: `Parse, validate and explain a staple, offline. The signature is checked only with an
issuer (--issuer, the --cert bundle, or <name>.issuer.pem beside --cert).
Exit 0 valid and good, 3 valid but revoked or unknown, 1 invalid or unparseable, 2 usage.`,
    positionals: 1,
    flags: [
      { name: 'cert', type: 'string', arg: 'pem', help: 'the certificate (bundle) the staple is for' },
      { name: 'issuer', type: 'string', arg: 'pem', help: "the certificate's issuer" },
      { name: 'at', type: 'string', arg: 'ISO-8601', help: 'validate at this instant (default now)' },
      JSON_FLAG,
    ],
    run: (values, [file]) => inspect(file!, values, io),
  };
}

async function inspect(file: string, values: FlagValues, io: CliIo): Promise<number> {
  const now = values.at === undefined ? new Date() : new Date(String(values.at));
  if (Number.isNaN(now.getTime())) throw new UsageError(`--at: not an ISO-8601 instant: ${values.at}`);
  const certFile = str(values.cert);
  const bundle = certFile ? await loadCerts(certFile, 'certificate') : [];
  const cert = bundle[0];
  // The issuer: --issuer, else the --cert bundle, else <name>.issuer.pem beside --cert (offline).
  const issuerFile = str(values.issuer);
  const issuer = issuerFile
    ? (await loadCerts(issuerFile, 'issuer'))[0]
    : cert && certFile
      ? await resolveIssuer(cert, bundle.slice(1), { sibling: siblingReader(certFile) }).then(
          (found) => found.issuer,
          () => undefined,
        )
      : undefined;
  let der: Buffer;
  try {
    der = await readCapped(file);
  } catch (err) {
    throw new Error(`read ${file}: ${errorMessage(err)}`);
  }
  // Judged as renew judges a staple: the same function, the same checks.
  const { parsed, verdict, parseError } = judgeStaple(der, { cert, issuer, now });
  if (!parsed) {
    // A certificate given where the staple goes: say so, and how to call it.
    const isCertificate = (() => {
      try {
        return parseCertificates(der).length > 0;
      } catch {
        return false;
      }
    })();
    const message = isCertificate
      ? `parse ${file}: this is a certificate, not an OCSP response; give a staple (and this file ` +
        `as --cert): ocsp-renewer inspect <staple> --cert ${file}`
      : `parse ${file}: not an OCSP response: ${parseError}`;
    const unparsed = explainStaple(undefined, { ...verdict, errors: [message] });
    if (values.json) io.out(JSON.stringify(unparsed, null, 2));
    else io.err(printable(message));
    return EXIT.failed;
  }
  const explanation = explainStaple(parsed, verdict);
  // Without an issuer nothing could check the signature: say that, not "NOT valid".
  const checked = issuer !== undefined;
  if (values.json) {
    io.out(JSON.stringify({ ...explanation, signature: { ...explanation.signature, checked } }, null, 2));
  } else {
    io.out(explanationText(explanation, verdict, checked));
  }
  if (!verdict.valid) return EXIT.failed;
  return verdict.certStatus === 'good' ? EXIT.ok : EXIT.notGood;
}

/** The explanation as text; without an issuer the signature is "not checked", never "NOT valid". */
function explanationText(
  explanation: ReturnType<typeof explainStaple>,
  verdict: Verdict,
  checked: boolean,
): string {
  let text = formatExplanation(explanation);
  if (!checked) {
    // Without an issuer the signature is unknown, not bad: say "not checked", never "valid: NO"
    // for that alone (other errors still show).
    const onlyNoIssuer = verdict.code === 'issuer-missing' && verdict.errors.length === 1;
    text = text
      .replace(
        /^signature: {7}NOT valid.*$/m,
        'signature:       NOT CHECKED: no issuer (pass --cert <bundle> or --issuer <pem>)',
      )
      .replace(
        /^valid: {11}NO$/m,
        `valid:           ${onlyNoIssuer ? 'signature not checked (no issuer)' : 'NO'}`,
      );
    if (onlyNoIssuer) text = text.replace(/^code: {12}issuer-missing\n?|^error: {11}.*\n?/gm, '').trimEnd();
  }
  return text;
}
