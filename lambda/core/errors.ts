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

/**
 * The file-system errors a command or a run can meet, in plain words. Node's own message
 * (`ENOTDIR: not a directory, open '/etc/ssl/ocsp/.a.ocsp.tmp-3f…'`) names a system call and
 * perhaps a temp file; whoever catches one names the path and what it was doing.
 */
const FILE_ERROR_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory, where a file is expected',
  ENOTDIR: 'not a directory (a part of the path is a file)',
  ELOOP: 'too many levels of symbolic links',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EMFILE: 'too many open files in this process (see ulimit -n)',
  ENFILE: 'too many open files on this system',
  ENAMETOOLONG: 'the name is too long',
  EIO: 'an input/output error on the device',
};

/** Node's error for a system call: `code` (`ENOENT`…), `syscall` (`open`…), the path(s) it was given. */
interface SystemError {
  code: string;
  syscall: string;
  path?: string;
  dest?: string;
}

function isSystemError(err: unknown): err is SystemError {
  const e = err as Partial<SystemError> | null | undefined;
  return typeof e?.code === 'string' && typeof e.syscall === 'string';
}

/**
 * A file-system error (one of FILE_ERROR_WORDS, from a file system call) in plain words, else
 * undefined.
 * @example fileErrorReason(enotdir) === 'not a directory (a part of the path is a file)'
 */
function fileErrorReason(err: unknown): string | undefined {
  if (!isSystemError(err) || err.syscall.startsWith('spawn')) return undefined;
  return Object.hasOwn(FILE_ERROR_WORDS, err.code) ? FILE_ERROR_WORDS[err.code] : undefined;
}

/** What a system call was doing, as the fallback message says it. */
const SYSCALL_WORDS: Readonly<Record<string, string>> = {
  open: 'open',
  read: 'read',
  write: 'write',
  mkdir: 'create the directory',
  scandir: 'list the directory',
  opendir: 'list the directory',
  rename: 'rename',
  link: 'link',
  unlink: 'remove',
  rmdir: 'remove the directory',
  stat: 'look at',
  lstat: 'look at',
  realpath: 'resolve',
  readlink: 'resolve',
  chmod: 'change the mode of',
  fsync: 'flush',
};

/**
 * errorMessage, naming the path and what was being done for a file-system error, for a caller
 * that cannot know which file failed (a walk, the command's last backstop):
 * `cannot create the directory /x/y: not a directory (a part of the path is a file)`.
 */
export function fileErrorMessage(err: unknown): string {
  const reason = fileErrorReason(err);
  if (reason === undefined || !isSystemError(err) || err.path === undefined) return errorMessage(err);
  const doing = SYSCALL_WORDS[err.syscall] ?? err.syscall;
  return `cannot ${doing} ${err.path}${err.dest ? ` as ${err.dest}` : ''}: ${reason}`;
}

/**
 * Narrows anything thrown to a readable message: a file-system error in plain words
 * (fileErrorReason; the caller names the path and the stage), anything else its message. Never a
 * stack trace.
 */
export function errorMessage(err: unknown): string {
  const reason = fileErrorReason(err);
  if (reason !== undefined) return reason;
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
