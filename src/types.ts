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

export interface CommandArgs {
  options: Record<string, unknown>;
  positionals: string[];
}

export type RunFunction = (args: CommandArgs, ctx: RunContext) => Promise<CommandResult>;
