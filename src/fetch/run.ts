import { HeadstartError } from '../errors.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';

// Placeholder until this command is built; replaced by its implementation.
export async function runFetch(_args: CommandArgs, _ctx: RunContext): Promise<CommandResult> {
  throw new HeadstartError('not implemented yet');
}
