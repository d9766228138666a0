import { describe, expect, it } from 'vitest';
import { COMMANDS, helpText, main, parseCommandLine } from '../../src/cli.js';
import { UsageError } from '../../src/errors.js';
import { thrownSync } from '../helpers/errors.js';

function sink() {
  let text = '';
  return {
    write: (s: string) => {
      text += s;
      return true;
    },
    get text() {
      return text;
    },
  };
}

describe('parseCommandLine', () => {
  it('parses a command with defaults filled in', () => {
    const p = parseCommandLine(['train-head', '--epochs', '3', '--optimizer=adam', '--json']);
    expect(p.command?.name).toBe('train-head');
    expect(p.args.options.epochs).toBe(3);
    expect(p.args.options.optimizer).toBe('adam');
    expect(p.args.options.batchSize).toBe(64);
    expect(p.json).toBe(true);
  });

  it('takes boolean flags bare, with =false, and as --no-<flag>', () => {
    expect(parseCommandLine(['extract', '--pooled']).args.options.pooled).toBe(true);
    expect(parseCommandLine(['extract', '--pooled=false']).args.options.pooled).toBe(false);
    expect(parseCommandLine(['train-head', '--no-fold']).args.options.fold).toBe(false);
  });

  it('collects positionals', () => {
    const p = parseCommandLine(['predict', 'a.png', 'b.jpg', '--top', '2']);
    expect(p.args.positionals).toEqual(['a.png', 'b.jpg']);
    expect(p.args.options.top).toBe(2);
  });

  it('rejects a non-integer epoch count in the one message format', () => {
    expect(() => parseCommandLine(['train-head', '--epochs', '1.5'])).toThrow(UsageError);
    expect(() => parseCommandLine(['train-head', '--epochs', '1.5'])).toThrow('Expected positive integer for --epochs but received "1.5"');
  });

  it('rejects zero where a positive integer is needed', () => {
    expect(() => parseCommandLine(['extract', '--batch-size', '0'])).toThrow('Expected positive integer for --batch-size but received "0"');
  });

  it('rejects a value outside an enum', () => {
    expect(() => parseCommandLine(['extract', '--device', 'tpu'])).toThrow('Expected one of auto|cuda|webgpu|cpu for --device but received "tpu"');
  });

  it('rejects a negative learning rate', () => {
    expect(() => parseCommandLine(['train-head', '--lr', '-1'])).toThrow('Expected positive number for --lr but received "-1"');
  });

  it('rejects a dropout of 1 or more', () => {
    expect(() => parseCommandLine(['train-head', '--dropout', '1'])).toThrow('Expected number in [0, 1) for --dropout but received "1"');
  });

  it('rejects an unknown command', () => {
    expect(() => parseCommandLine(['trian'])).toThrow(/Expected a command \(fetch, extract, .*\) for headstart but received "trian"/);
  });

  it('rejects an unknown option and names the command', () => {
    expect(() => parseCommandLine(['extract', '--epochs', '3'])).toThrow('Unknown option --epochs for headstart extract; see headstart extract --help');
  });

  it('rejects a missing option value', () => {
    expect(() => parseCommandLine(['train-head', '--lr'])).toThrow('Expected a value (RATE) for --lr but received nothing');
  });

  it('rejects a missing positional argument', () => {
    expect(() => parseCommandLine(['predict'])).toThrow(UsageError);
    expect(() => parseCommandLine(['predict'])).toThrow(/at least one image argument/);
  });

  it('rejects an unknown fetch target', () => {
    expect(() => parseCommandLine(['fetch', 'resnet'])).toThrow('Expected one of vgg16|resnet18|resnet34|resnet50|cifar10 for headstart fetch but received "resnet"');
  });

  it('rejects positionals for a command that takes none', () => {
    expect(() => parseCommandLine(['extract', 'train'])).toThrow('Expected no arguments for headstart extract but received "train"');
  });
});

/** The message of the UsageError parsing `argv` throws (the test fails if it throws none, or another class). */
function usageMessage(argv: string[]): string {
  const error = thrownSync(() => parseCommandLine(argv));
  expect(error).toBeInstanceOf(UsageError);
  return error.message;
}

describe('train-head: head kinds, the validation split and the top-losses sheet', () => {
  it('parses --head and --hidden, single or as comma lists (a sweep), with no fixed default', () => {
    const o = (line: string) => parseCommandLine(['train-head', ...line.split(' ').filter(Boolean)]).args.options;
    expect(o('')).not.toHaveProperty('head');
    expect(o('')).not.toHaveProperty('hidden');
    expect(o('--head linear --hidden 8')).toMatchObject({ head: 'linear', hidden: 8 });
    expect(o('--head linear,mlp --hidden 8,16')).toMatchObject({ head: ['linear', 'mlp'], hidden: [8, 16] });
  });

  it('refuses a --head that is not a kind', () => {
    expect(usageMessage(['train-head', '--head', 'resnet'])).toBe('Expected one of classifier|mlp|linear for --head but received "resnet"');
  });

  it('refuses a --hidden of 0', () => {
    expect(usageMessage(['train-head', '--hidden', '0'])).toBe('Expected positive integer for --hidden but received "0"');
  });

  it('parses --val-split (none as the word) and --top-losses (default 16, 0 for none)', () => {
    expect(parseCommandLine(['train-head']).args.options).toMatchObject({ topLosses: 16 });
    expect(parseCommandLine(['train-head']).args.options).not.toHaveProperty('valSplit');
    expect(parseCommandLine(['train-head', '--val-split', 'none', '--top-losses', '0']).args.options).toMatchObject({ valSplit: 'none', topLosses: 0 });
  });

  it('refuses an empty --val-split', () => {
    expect(usageMessage(['train-head', '--val-split='])).toBe('Expected a non-empty value for --val-split but received ""');
  });

  it('refuses a negative --top-losses', () => {
    expect(usageMessage(['train-head', '--top-losses', '-1'])).toBe('Expected non-negative integer for --top-losses but received "-1"');
  });
});

describe('extract: backbones, normalisation and the val split', () => {
  it('parses onnx:FILE, --output, --mean and --std (three numbers, repeats allowed), with no fixed image size', () => {
    const o = parseCommandLine(['extract', '--backbone', 'onnx:m.onnx', '--output', 'logits', '--mean', '0.5,0.5,0.5', '--std', '0.25,0.2,1e-1']).args.options;
    expect(o).toMatchObject({ backbone: 'onnx:m.onnx', output: 'logits', mean: [0.5, 0.5, 0.5], std: [0.25, 0.2, 0.1] });
    expect(o).not.toHaveProperty('imageSize');
    expect(parseCommandLine(['extract', '--backbone', 'resnet50']).args.options.backbone).toBe('resnet50');
  });

  it('refuses a --backbone that is neither registered nor onnx:FILE, listing both', () => {
    expect(usageMessage(['extract', '--backbone', 'resnet'])).toBe('Expected one of vgg16|resnet18|resnet34|resnet50|onnx:FILE for --backbone but received "resnet"');
  });

  it('refuses a --mean of two numbers', () => {
    expect(usageMessage(['extract', '--mean', '0.5,0.5'])).toBe('Expected 3 comma-separated values (R,G,B) for --mean but received "0.5,0.5"');
  });

  it('refuses a --mean that is not numbers', () => {
    expect(usageMessage(['extract', '--mean', '0.5,x,0.5'])).toBe('Expected number for --mean but received "x" (in "0.5,x,0.5")');
  });

  it('refuses a --std with a 0', () => {
    expect(usageMessage(['extract', '--std', '0.2,0,0.2'])).toBe('Expected positive number for --std but received "0" (in "0.2,0,0.2")');
  });

  it('parses --val-fraction (default 0) and --split val', () => {
    expect(parseCommandLine(['extract']).args.options).toMatchObject({ valFraction: 0, split: 'all' });
    expect(parseCommandLine(['extract', '--val-fraction', '0.2', '--split', 'val']).args.options).toMatchObject({ valFraction: 0.2, split: 'val' });
  });

  it('refuses a --val-fraction of 1', () => {
    expect(usageMessage(['extract', '--val-fraction', '1'])).toBe('Expected number in [0, 1) for --val-fraction but received "1"');
  });
});

describe('evaluate and fetch', () => {
  it('parses evaluate --top-losses N (no default) and --split val', () => {
    expect(parseCommandLine(['evaluate']).args.options).not.toHaveProperty('topLosses');
    expect(parseCommandLine(['evaluate', '--top-losses', '4', '--split', 'val']).args.options).toMatchObject({ topLosses: 4, split: 'val' });
  });

  it('refuses evaluate --top-losses 0', () => {
    expect(usageMessage(['evaluate', '--top-losses', '0'])).toBe('Expected positive integer for --top-losses but received "0"');
  });

  it('parses fetch --weights-version', () => {
    expect(parseCommandLine(['fetch', 'resnet50', '--weights-version', 'v1']).args.options.weightsVersion).toBe('v1');
  });

  it('keeps onnx:FILE out of fetch: its targets stay the registered ids', () => {
    expect(usageMessage(['fetch', 'onnx:m.onnx'])).toBe('Expected one of vgg16|resnet18|resnet34|resnet50|cifar10 for headstart fetch but received "onnx:m.onnx"');
  });
});

describe('help', () => {
  it('lists every command and every option of a command', () => {
    const top = helpText();
    for (const c of COMMANDS) expect(top).toContain(c.name);
    const extract = COMMANDS.find((c) => c.name === 'extract')!;
    const text = helpText(extract);
    for (const o of extract.options) expect(text).toContain(`--${o.name}`);
    expect(text).toContain('Example: headstart extract');
    expect(text).toContain('vgg16, resnet18, resnet34, resnet50, onnx:FILE');
    expect(text).toContain("default: the backbone's, else 32");
  });
});

describe('main', () => {
  it('prints help for --help and exits 0', async () => {
    const out = sink();
    const err = sink();
    expect(await main(['--help'], { stdout: out, stderr: err })).toBe(0);
    expect(out.text).toContain('Usage: headstart <command>');
  });

  it('prints one line and exits 2 for a bad option, without a stack trace', async () => {
    const out = sink();
    const err = sink();
    expect(await main(['train-head', '--epochs', 'x'], { stdout: out, stderr: err })).toBe(2);
    expect(err.text).toBe('headstart: Expected positive integer for --epochs but received "x"\n');
    expect(out.text).toBe('');
  });

  it('adds the stack trace with --verbose', async () => {
    const err = sink();
    await main(['train-head', '--epochs', 'x', '--verbose'], { stdout: sink(), stderr: err });
    expect(err.text.split('\n').length).toBeGreaterThan(2);
    expect(err.text).toContain('at ');
  });

  it('exits 2 with the command list when no command is given', async () => {
    const out = sink();
    expect(await main([], { stdout: out, stderr: sink() })).toBe(2);
    expect(out.text).toContain('Commands:');
  });
});
