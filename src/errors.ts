/**
 * Every failure a user can cause is a HeadstartError: the CLI prints its message as one line on
 * stderr and exits with its exit code, with no stack trace unless --verbose. Anything else that
 * escapes is a bug and is printed with its stack.
 */
export class HeadstartError extends Error {
  override name = 'HeadstartError';
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A bad command line: unknown command or option, or an option value of the wrong form. Exit code 2. */
export class UsageError extends HeadstartError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}

/** Bad input data: a file that is missing, truncated, of the wrong kind or shape. */
export class InputError extends HeadstartError {
  override name = 'InputError';
}

/** A file headstart made (cache, head, model) that does not match what the command needs. */
export class MismatchError extends HeadstartError {
  override name = 'MismatchError';
}

/** A compute device or backend that was asked for and cannot start. */
export class DeviceError extends HeadstartError {
  override name = 'DeviceError';
}

/** Downloads: offline, HTTP failures, checksum mismatches. */
export class DownloadError extends HeadstartError {
  override name = 'DownloadError';
}

/** Training that cannot go on (a loss that became NaN, say). */
export class TrainingError extends HeadstartError {
  override name = 'TrainingError';
}

/** `Expected positive integer for --epochs but received "1.5"`: the one format for every bad value. */
export function expected(what: string, where: string, received: unknown): string {
  const shown = received === undefined ? 'nothing' : typeof received === 'string' ? JSON.stringify(received) : String(received);
  return `Expected ${what} for ${where} but received ${shown}`;
}

/** An error's first line, trimmed: what one-line messages quote of a library's multi-line error. */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split('\n')[0] ?? text).trim();
}
