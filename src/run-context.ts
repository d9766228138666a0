/**
 * The CLI side of the library's hooks: a run context (stderr, clock, env) turned into hooks, and
 * Ctrl-C turned into an abort. The library never installs signal handlers; the command adapters do,
 * around the library call, through this.
 */
import { type ResolvedHooks, resolveHooks, streamReporter } from './api/reporter.js';
import type { RunContext } from './types.js';

/** Hooks that report on the context's stderr, with its clock and env. */
export function contextHooks(ctx: RunContext, signal?: AbortSignal): ResolvedHooks {
  return resolveHooks({ reporter: streamReporter(ctx.stderr, ctx.clock), signal, clock: ctx.clock, env: ctx.env ?? process.env });
}

/**
 * Runs `work` with a signal that the first Ctrl-C aborts, after writing `message` to stderr. The
 * handler is a `once`: a second Ctrl-C gets Node's default, which ends the process at once.
 */
export async function interruptible<T>(ctx: RunContext, message: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = (): void => {
    ctx.stderr.write(`${message}\n`);
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
