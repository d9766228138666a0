#!/usr/bin/env node
/**
 * The command line: a declarative table of commands and options, a parser that tests call without
 * a process, and a main() that prints results and maps errors to exit codes. The table itself, tied
 * to the library's options types, is commands.ts.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { listBackbones } from './backbones/index.js';
import { COMMANDS, type CommandSpec, type Flag, GLOBAL_OPTIONS } from './commands.js';
import { HeadstartError, UsageError, expected } from './errors.js';
import { type OptionSpec, parseOptionValue, parseValue } from './options.js';
import type { TextSink } from './progress.js';
import type { CommandArgs, RunContext } from './types.js';

export { COMMANDS, GLOBAL_OPTIONS, type CommandSpec, type Flag, type FlagSpec, type OptionTable } from './commands.js';

export interface ParsedCommandLine {
  command: CommandSpec | undefined;
  args: CommandArgs;
  json: boolean;
  verbose: boolean;
  help: boolean;
}

/** A command's options at their defaults (options without a default are left out). */
export function commandDefaults(command: CommandSpec): Record<string, unknown> {
  return command.defaults;
}

function findOption<S extends OptionSpec>(specs: S[], name: string): S | undefined {
  return specs.find((s) => s.name === name);
}

/** Parses argv (without `node cli.js`). Throws UsageError for anything malformed. */
export function parseCommandLine(argv: readonly string[], commands: CommandSpec[] = COMMANDS): ParsedCommandLine {
  const rest = [...argv];
  const global: Record<string, unknown> = { json: false, verbose: false, help: false };
  let command: CommandSpec | undefined;
  let options: Record<string, unknown> = {};
  const positionals: string[] = [];
  let onlyPositionals = false;
  while (rest.length > 0) {
    const arg = rest.shift()!;
    if (onlyPositionals || !arg.startsWith('-') || arg === '-') {
      if (command === undefined) {
        command = commands.find((c) => c.name === arg);
        if (command === undefined) throw new UsageError(expected(`a command (${commands.map((c) => c.name).join(', ')})`, 'headstart', arg));
      } else {
        positionals.push(arg);
      }
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    if (arg === '-h') {
      global.help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`Unknown option ${arg}; options are long, e.g. --help`);
    const eq = arg.indexOf('=');
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const globalSpec = findOption(GLOBAL_OPTIONS, name);
    const specs = command?.options ?? [];
    let spec: OptionSpec | Flag | undefined = globalSpec ?? findOption(specs, name);
    if (spec === undefined && name.startsWith('no-')) {
      const negated = findOption(specs, name.slice(3));
      if (negated?.type === 'boolean' && inline === undefined) {
        spec = negated;
        name = negated.name;
        inline = 'false';
      }
    }
    if (spec === undefined) {
      const where = command ? `headstart ${command.name}` : 'headstart';
      throw new UsageError(`Unknown option --${name} for ${where}; see ${where} --help`);
    }
    let value: unknown;
    if (spec.type === 'boolean') {
      value = inline === undefined ? true : parseValue(spec, inline);
    } else {
      const raw = inline ?? rest.shift();
      if (raw === undefined) throw new UsageError(expected(`a value (${spec.arg ?? 'VALUE'})`, `--${name}`, undefined));
      value = parseOptionValue(spec, raw);
    }
    if (globalSpec) global[name] = value;
    else {
      // Set under the library's key (--image-size sets imageSize).
      const key = (spec as Flag).key;
      options[key] = spec.repeat ? [...((options[key] as unknown[]) ?? []), value] : value;
    }
  }
  if (command) {
    options = { ...commandDefaults(command), ...options };
    const p = command.positional;
    if (!global.help) {
      if (p === undefined && positionals.length > 0) throw new UsageError(expected('no arguments', `headstart ${command.name}`, positionals[0]));
      if (p && positionals.length < p.min)
        throw new UsageError(expected(`${p.min === 1 && p.max === 1 ? 'one' : 'at least one'} ${p.name} argument (${p.describe})`, `headstart ${command.name}`, undefined));
      if (p && positionals.length > p.max) throw new UsageError(expected(`one ${p.name} argument`, `headstart ${command.name}`, positionals.join(' ')));
      if (p?.choices) for (const v of positionals) if (!p.choices.includes(v)) throw new UsageError(expected(`one of ${p.choices.join('|')}`, `headstart ${command.name}`, v));
    }
  }
  return { command, args: { options, positionals }, json: global.json as boolean, verbose: global.verbose as boolean, help: global.help as boolean };
}

function optionLine(spec: OptionSpec): string {
  const arg = spec.arg ?? 'VALUE';
  const value = `${arg}${spec.list ? `[,${arg}...]` : ''}${spec.keywords ? `|${spec.keywords.join('|')}` : ''}`;
  const left = spec.type === 'boolean' ? `--${spec.name}` : `--${spec.name} ${value}`;
  const def = spec.default !== undefined && spec.default !== false ? ` (default: ${spec.default})` : '';
  return `  ${left.padEnd(26)} ${spec.describe}${def}`;
}

export function helpText(command?: CommandSpec): string {
  if (command === undefined) {
    return [
      `headstart: transfer learning on Node.js (frozen ${listBackbones()
        .map((b) => b.name)
        .join('/')} features, a small head trained in TensorFlow.js)`,
      '',
      'Usage: headstart <command> [options]',
      '',
      'Commands:',
      ...COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
      '',
      'Options for every command:',
      ...GLOBAL_OPTIONS.map(optionLine),
      '',
      "Run `headstart <command> --help` for a command's options.",
      '',
    ].join('\n');
  }
  const p = command.positional;
  const usage = `headstart ${command.name}${p ? (p.max > 1 ? ` <${p.name}...>` : ` <${p.name}>`) : ''} [options]`;
  return [
    `${command.summary}`,
    '',
    `Usage: ${usage}`,
    ...(p ? ['', `  <${p.name}>  ${p.describe}`] : []),
    '',
    'Options:',
    ...command.options.map(optionLine),
    ...GLOBAL_OPTIONS.map(optionLine),
    ...(command.options.some((s) => s.list) ? ['', 'Options shown with [,...] take a comma list: every combination of the lists is trained (a sweep), from one read of the features.'] : []),
    '',
    `Example: ${command.example}`,
    '',
  ].join('\n');
}

export interface CliIO {
  stdout: TextSink;
  stderr: TextSink;
  env?: Record<string, string | undefined>;
}

/** Runs one command line; returns the exit code. Never calls process.exit. */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  let verbose = argv.includes('--verbose');
  try {
    const parsed = parseCommandLine(argv);
    verbose = parsed.verbose;
    if (parsed.help || parsed.command === undefined) {
      io.stdout.write(helpText(parsed.command));
      return parsed.help ? 0 : 2;
    }
    const run = await parsed.command.load();
    const ctx: RunContext = { stderr: io.stderr, json: parsed.json, verbose: parsed.verbose, env: io.env ?? process.env };
    const result = await run(parsed.args, ctx);
    io.stdout.write(parsed.json ? `${JSON.stringify(result.data, null, 2)}\n` : result.text.endsWith('\n') ? result.text : `${result.text}\n`);
    return result.exitCode ?? 0;
  } catch (error) {
    if (error instanceof HeadstartError) {
      io.stderr.write(`headstart: ${error.message}\n`);
      if (verbose && error.stack) io.stderr.write(`${error.stack}\n`);
      return error.exitCode;
    }
    io.stderr.write(`headstart: internal error: ${error instanceof Error ? (verbose ? error.stack : error.message) : String(error)}\n`);
    if (!verbose) io.stderr.write('headstart: run again with --verbose for the stack trace, and please report it\n');
    return 70;
  }
}

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then((code) => {
    process.exitCode = code;
  });
}
