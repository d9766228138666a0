#!/usr/bin/env node
/**
 * The command line: a declarative table of commands and options, a parser that tests call without
 * a process, and a main() that prints results and maps errors to exit codes. Each command's code is
 * imported only when it runs, so `--help` never loads ONNX Runtime, TensorFlow.js or sharp.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { backboneIds, defaultBackbone, defaultWeightsPath, listBackbones } from './backbones/index.js';
import { HeadstartError, UsageError, expected } from './errors.js';
import { DEVICE_REQUESTS } from './extract/types.js';
import { type OptionSpec, parseOptionValue, parseValue } from './options.js';
import type { TextSink } from './progress.js';
import type { CommandArgs, RunContext, RunFunction } from './types.js';

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments, e.g. `<image...>`. */
  positional?: { name: string; describe: string; min: number; max: number; choices?: readonly string[] };
  options: OptionSpec[];
  example: string;
  load: () => Promise<RunFunction>;
}

const DEVICE: OptionSpec = { name: 'device', type: 'enum', choices: DEVICE_REQUESTS, default: 'auto', describe: 'ONNX Runtime execution provider for the trunk', arg: 'NAME' };
const WEIGHTS: OptionSpec = {
  name: 'weights',
  type: 'string',
  describe: `the backbone's checkpoint (.pth, legacy or zip, or .safetensors; default: its published file in models/, ${defaultWeightsPath(defaultBackbone())} for ${defaultBackbone().id})`,
  arg: 'FILE',
};
const CACHE: OptionSpec = { name: 'cache', type: 'string', describe: 'feature cache (default cache/<data>-<backbone>-<size>.h5)', arg: 'FILE' };
// Choices read when asked, so a backbone a library user registers later is one too.
const BACKBONE: OptionSpec = {
  name: 'backbone',
  type: 'enum',
  get choices() {
    return backboneIds();
  },
  default: defaultBackbone().id,
  describe: 'the frozen trunk whose features are cached (train-head, predict and export take it from the cache or head)',
  arg: 'ID',
};
const DATA: OptionSpec = { name: 'data', type: 'string', default: 'cifar10', describe: 'cifar10, digits, or an image folder', arg: 'NAME|DIR' };
const DATA_DIR: OptionSpec = { name: 'data-dir', type: 'string', default: 'data', describe: 'where downloaded data sets live', arg: 'DIR' };
const IMAGE_SIZE: OptionSpec = { name: 'image-size', type: 'positiveInt', default: 32, describe: 'images are resized to SIZE×SIZE (32: CIFAR-10 as it is)', arg: 'SIZE' };
const HEAD: OptionSpec = { name: 'head', type: 'string', describe: 'trained head folder (default: the newest under models/heads/)', arg: 'DIR' };
const BACKEND: OptionSpec = { name: 'backend', type: 'enum', choices: ['auto', 'webgpu', 'cpu', 'tensorflow'], default: 'auto', describe: 'TensorFlow.js backend for the head', arg: 'NAME' };
const SEED: OptionSpec = { name: 'seed', type: 'nonNegativeInt', default: 0, describe: 'random seed', arg: 'N' };
const MAX_IMAGE_PIXELS: OptionSpec = {
  name: 'max-image-pixels',
  type: 'positiveInt',
  default: 100_000_000,
  describe: 'refuse images of more pixels (width×height, read from the header before decoding)',
  arg: 'N',
};
const RANDOM_WEIGHTS: OptionSpec = { name: 'random-weights', type: 'boolean', default: false, describe: 'use a randomly initialised backbone (seeded) instead of pretrained weights' };

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'json', type: 'boolean', default: false, describe: 'print results as JSON on stdout' },
  { name: 'verbose', type: 'boolean', default: false, describe: 'more detail, and stack traces on errors' },
  { name: 'help', type: 'boolean', default: false, describe: 'show help' },
];

export const COMMANDS: CommandSpec[] = [
  {
    name: 'fetch',
    summary: `Find or download a backbone's weights (${backboneIds().join(', ')}) or CIFAR-10 (resumable, checksummed)`,
    positional: { name: 'what', describe: `${backboneIds().join(', ')} or cifar10`, min: 1, max: 1, choices: [...backboneIds(), 'cifar10'] },
    options: [
      { name: 'models-dir', type: 'string', default: 'models', describe: 'where weights are kept', arg: 'DIR' },
      DATA_DIR,
      { name: 'url', type: 'string', describe: 'download from this URL instead of the official one', arg: 'URL' },
    ],
    example: `headstart fetch ${defaultBackbone().id}`,
    load: async () => (await import('./fetch/run.js')).runFetch,
  },
  {
    name: 'extract',
    summary: 'Run a frozen backbone over a data set and cache the features to HDF5',
    options: [
      { name: 'split', type: 'enum', choices: ['train', 'test', 'all'], default: 'all', describe: 'which split to extract', arg: 'NAME' },
      DATA,
      DATA_DIR,
      IMAGE_SIZE,
      CACHE,
      BACKBONE,
      WEIGHTS,
      RANDOM_WEIGHTS,
      DEVICE,
      { name: 'batch-size', type: 'positiveInt', default: 64, describe: 'images per inference batch', arg: 'N' },
      { name: 'pooled', type: 'boolean', default: false, describe: 'store the [N, 25088] avgpool output instead of the trunk map' },
      { name: 'test-fraction', type: 'fraction', default: 0.2, describe: 'for a folder without train/ and test/: share held out', arg: 'F' },
      SEED,
      MAX_IMAGE_PIXELS,
      { name: 'force', type: 'boolean', default: false, describe: 'replace a cache made with other weights or size' },
      { name: 'shard', type: 'string', describe: 'make only shard I of N (0-based, contiguous rows) of --split train|test, into <cache>.shard-I-of-N.h5; see headstart merge', arg: 'I/N' },
      {
        name: 'shards',
        type: 'positiveInt',
        describe: 'N, with the shard index from the scheduler: JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array; N defaults to SLURM_ARRAY_TASK_COUNT)',
        arg: 'N',
      },
    ],
    example: 'headstart extract --split train',
    load: async () => (await import('./extract/run.js')).runExtract,
  },
  {
    name: 'train-head',
    summary: 'Train the classifier 25088→4096→4096→K on cached features',
    options: [
      CACHE,
      DATA,
      IMAGE_SIZE,
      WEIGHTS,
      RANDOM_WEIGHTS,
      BACKEND,
      { name: 'init', type: 'enum', choices: ['pretrained', 'random'], default: 'pretrained', describe: "start the first two layers from the backbone's classifier or from scratch", arg: 'HOW' },
      { name: 'optimizer', type: 'enum', choices: ['sgd', 'adam'], default: 'sgd', describe: 'SGD with momentum 0.9, or Adam', arg: 'NAME', list: true },
      {
        name: 'lr',
        type: 'positiveNumber',
        default: 0.001,
        describe: 'learning rate; find: a learning-rate range test that suggests one (writes no head)',
        arg: 'RATE',
        list: true,
        keywords: ['find'],
      },
      { name: 'weight-decay', type: 'nonNegativeNumber', default: 0, describe: 'L2 weight decay (decoupled with Adam)', arg: 'W', list: true },
      { name: 'batch-size', type: 'positiveInt', default: 64, describe: 'training batch size', arg: 'N', list: true },
      { name: 'epochs', type: 'positiveInt', default: 10, describe: 'training epochs', arg: 'N' },
      { name: 'dropout', type: 'fraction', default: 0.5, describe: 'dropout probability', arg: 'P', list: true },
      { name: 'patience', type: 'nonNegativeInt', default: 0, describe: 'stop after N epochs without a better --monitor value, keeping the best epoch (0: never)', arg: 'N' },
      { name: 'val-fraction', type: 'fraction', default: 0.1, describe: "share of each class's train rows held out (seeded) to pick the epoch; 0: the test split picks it (biased)", arg: 'F' },
      { name: 'monitor', type: 'enum', choices: ['val-accuracy', 'val-loss'], default: 'val-accuracy', describe: 'what --patience and the best epoch watch on the validation split', arg: 'WHAT' },
      {
        name: 'class-weight',
        type: 'enum',
        choices: ['balanced', 'none'],
        default: 'none',
        describe: 'balanced: weight the loss by inverse class frequency, N / (K·n_c), for imbalanced classes',
        arg: 'HOW',
      },
      { name: 'keep-checkpoint', type: 'boolean', default: false, describe: 'keep <out>/checkpoint/ after a finished run (an interrupted one always keeps it)' },
      { name: 'fold', type: 'boolean', default: true, describe: 'train the exact folded 512-input layer when the cached map is 1×1' },
      { name: 'resume', type: 'boolean', default: false, describe: 'continue from the checkpoint in --out' },
      { name: 'out', type: 'string', describe: 'output folder (default models/heads/<cache>-<time>; a sweep: models/heads/<cache>-sweep-<time>)', arg: 'DIR' },
      { ...SEED, list: true },
    ],
    example: 'headstart train-head --epochs 10 --optimizer adam --lr 1e-4',
    load: async () => (await import('./head/run.js')).runTrainHead,
  },
  {
    name: 'predict',
    summary: 'Classify images with a trained head',
    positional: { name: 'image', describe: 'image files (PNG, JPEG, WebP, GIF, TIFF, AVIF)', min: 1, max: Infinity },
    options: [
      HEAD,
      { ...WEIGHTS, describe: "the checkpoint the head was trained with (default: its backbone's published file in models/ or PyTorch's cache; a random-weights head needs none)" },
      DEVICE,
      { name: 'top', type: 'positiveInt', default: 3, describe: 'classes to show per image', arg: 'K' },
      MAX_IMAGE_PIXELS,
    ],
    example: 'headstart predict cat.png dog.jpg --top 3',
    load: async () => (await import('./predict/run.js')).runPredict,
  },
  {
    name: 'evaluate',
    summary: 'Accuracy, top-k, per-class precision/recall/F1, most-confused pairs and confusion matrix of a head on a cached split',
    options: [
      HEAD,
      CACHE,
      { name: 'split', type: 'enum', choices: ['train', 'test'], default: 'test', describe: 'split to evaluate', arg: 'NAME' },
      { name: 'top-k', type: 'string', describe: 'top-k accuracies to report, a comma list (default: 1, and 5 when the head has more than 5 classes)', arg: 'K[,K...]' },
    ],
    example: 'headstart evaluate --split test',
    load: async () => (await import('./predict/evaluate.js')).runEvaluate,
  },
  {
    name: 'runs',
    summary: 'List the trained heads: settings that differ, val/test accuracy, epochs, time, size; --compare two',
    positional: { name: 'dir', describe: 'folder of heads (default models/heads; sweep folders inside are searched too), or with --compare the two runs', min: 0, max: 2 },
    options: [
      { name: 'sort', type: 'enum', choices: ['date', 'val', 'test', 'size'], default: 'date', describe: 'order: date (oldest first), or val/test accuracy or size (largest first)', arg: 'KEY' },
      { name: 'compare', type: 'boolean', default: false, describe: 'show two runs (names as listed, or folders) side by side, with per-class test accuracy' },
    ],
    example: 'headstart runs --sort val',
    load: async () => (await import('./runs/run.js')).runRuns,
  },
  {
    name: 'demo',
    summary: 'The whole path offline on the bundled digits: extract, train, evaluate, predict',
    options: [
      WEIGHTS,
      DEVICE,
      BACKEND,
      { name: 'epochs', type: 'positiveInt', default: 10, describe: 'training epochs', arg: 'N' },
      { name: 'out', type: 'string', default: 'runs/demo', describe: 'where the demo writes everything', arg: 'DIR' },
    ],
    example: 'headstart demo',
    load: async () => (await import('./demo.js')).runDemo,
  },
  {
    name: 'export',
    summary: 'One ONNX file with the trunk and the trained head: image in, probabilities out',
    options: [{ name: 'onnx', type: 'string', describe: 'output file', arg: 'FILE' }, HEAD, WEIGHTS],
    example: 'headstart export --onnx digits.onnx',
    load: async () => (await import('./export.js')).runExport,
  },
  {
    name: 'merge',
    summary: 'Join the shards of a split (extract --shard) into one cache, as one extract would have made it',
    positional: { name: 'files', describe: 'the output cache, then the shard caches', min: 1, max: Infinity },
    options: [
      { name: 'from', type: 'string', describe: 'take the shards from this folder (every *.shard-I-of-N.h5 in it)', arg: 'DIR' },
      { name: 'split', type: 'enum', choices: ['train', 'test'], describe: 'the split to merge (default: the one the shards hold)', arg: 'NAME' },
      { name: 'virtual', type: 'boolean', default: false, describe: 'an HDF5 virtual dataset over the shards instead of a copy (not available: h5wasm cannot create one)' },
      { name: 'force', type: 'boolean', default: false, describe: 'replace OUT when it holds the split already or another cache' },
    ],
    example: 'headstart merge cache/digits-vgg16-32.h5 --from cache/shards',
    load: async () => (await import('./merge/run.js')).runMerge,
  },
  {
    name: 'inspect',
    summary: 'What a cache, a head or a checkpoint holds',
    positional: { name: 'path', describe: 'a .h5 cache, a head folder, or a checkpoint', min: 1, max: 1 },
    options: [{ name: 'verify', type: 'boolean', default: false, describe: 'read every row of a cache and check it (finite values, counts, labels, checksums); exit 1 on any problem' }],
    example: `headstart inspect cache/cifar10-${defaultBackbone().id}-32.h5`,
    load: async () => (await import('./inspect.js')).runInspect,
  },
];

export interface ParsedCommandLine {
  command: CommandSpec | undefined;
  args: CommandArgs;
  json: boolean;
  verbose: boolean;
  help: boolean;
}

/** A command's options at their defaults (options without a default are left out). */
export function commandDefaults(command: CommandSpec): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const spec of command.options) if (spec.default !== undefined) options[spec.name] = spec.default;
  return options;
}

function findOption(specs: OptionSpec[], name: string): OptionSpec | undefined {
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
    let spec = globalSpec ?? findOption(specs, name);
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
    else if (spec.repeat) options[name] = [...((options[name] as unknown[]) ?? []), value];
    else options[name] = value;
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
