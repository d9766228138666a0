import { describe, expect, it } from 'vitest';
import { COMMANDS, helpText, main, parseCommandLine } from '../../src/cli.js';
import { UsageError } from '../../src/errors.js';

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

describe('help', () => {
  it('lists every command and every option of a command', () => {
    const top = helpText();
    for (const c of COMMANDS) expect(top).toContain(c.name);
    const extract = COMMANDS.find((c) => c.name === 'extract')!;
    const text = helpText(extract);
    for (const o of extract.options) expect(text).toContain(`--${o.name}`);
    expect(text).toContain('Example: headstart extract');
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
