/**
 * The stages a certificate goes through in a run. A failure names its stage and its object, so an
 * operator reading "fetch certs/a.pem: responder answered HTTP 503" knows where to look.
 */
export type Stage = 'source' | 'parse' | 'issuer' | 'fetch' | 'validate' | 'store';

export class RenewError extends Error {
  override readonly name = 'RenewError';
  readonly stage: Stage;
  /** The object the error is about: a certificate key, a URL, a staple key. */
  readonly key: string;
  /** The bare reason, without the stage and key prefix. */
  readonly reason: string;
  /**
   * A stable code for the failure class where one is known: the verdict code of the last answer
   * (`signature`, `stale`, `status:tryLater`, …, see validate.ts) or the replace rule's refusal
   * (`older-than-stored`, `cert-status-unknown`).
   */
  readonly code: string | undefined;

  constructor(stage: Stage, key: string, reason: string, options?: { cause?: unknown; code?: string }) {
    super(`${stage} ${key}: ${reason}`, { cause: options?.cause });
    this.stage = stage;
    this.key = key;
    this.reason = reason;
    this.code = options?.code;
  }
}

/** Narrows anything thrown to a readable message. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * A request cut short, or never sent, because the run's deadline came (the Lambda's remaining
 * time minus what saving the state needs): not the responder's fault, so it is no failure for the
 * backoff; the next run asks again.
 */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
  readonly code = 'DEADLINE';
  /** The stage whose request was cut (the OCSP fetch unless said otherwise). */
  readonly stage: Stage;

  constructor(message: string, options?: { cause?: unknown; stage?: Stage }) {
    super(message, options);
    this.stage = options?.stage ?? 'fetch';
  }
}

/** What parseCertificates and the Certificate constructor throw: the bytes are not a certificate. */
export class CertificateParseError extends Error {
  override readonly name = 'CertificateParseError';
  readonly code = 'CERTIFICATE_PARSE';
}

/**
 * Why bytes are not an OCSP response: `not-der` when the encoding is not canonical DER (BER
 * lengths, a padded INTEGER, a BOOLEAN other than 00/FF, unused bits in a signature, a time not in
 * RFC 5280's form), `parse` when the DER does not have OCSP's structure (a missing, extra or
 * mistyped field). The message says which field and at which byte.
 */
export type ResponseParseCode = 'not-der' | 'parse';

/** The one error parseOcspResponse throws: the bytes are not a well-formed OCSP response. */
export class ResponseParseError extends Error {
  override readonly name = 'ResponseParseError';
  readonly code = 'RESPONSE_PARSE';
  constructor(
    message: string,
    /** The verdict code a response that does not parse gets: `not-der` or `parse`. */
    readonly verdictCode: ResponseParseCode = 'parse',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
