import type { Clock, TextSink } from './progress.js';

/** What every run* function gets from the CLI (or from a test): where to report, and how. */
export interface RunContext {
  /** Progress, warnings and notes go here; results never do. */
  stderr: TextSink;
  json: boolean;
  verbose: boolean;
  clock?: Clock;
  env?: Record<string, string | undefined>;
}

/** What a run* function returns: the text for people and the data for `--json`. */
export interface CommandResult {
  text: string;
  data: unknown;
  /** Non-zero when results were produced but some inputs failed: the CLI prints them, then exits with it. */
  exitCode?: number;
}

/** A command's parsed options, keyed as the library's options type (cli.ts's tables map flags onto those keys). */
export interface CommandArgs<O extends object = Record<string, unknown>> {
  options: O;
  positionals: string[];
}

// biome-ignore lint/suspicious/noExplicitAny: the command table holds adapters of every options type
export type RunFunction<O extends object = any> = (args: CommandArgs<O>, ctx: RunContext) => Promise<CommandResult>;
