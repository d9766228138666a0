import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { COMMANDS, helpText, parseCommandLine } from '../../src/cli.js';
import { parseOptionValue, parseValue } from '../../src/options.js';

describe('parseValue', () => {
  it('parses each type', () => {
    expect(parseValue({ name: 'n', type: 'positiveInt', describe: '' }, '12')).toBe(12);
    expect(parseValue({ name: 'n', type: 'nonNegativeInt', describe: '' }, '0')).toBe(0);
    expect(parseValue({ name: 'lr', type: 'positiveNumber', describe: '' }, '1e-4')).toBe(1e-4);
    expect(parseValue({ name: 'wd', type: 'number', describe: '' }, '0')).toBe(0);
    expect(parseValue({ name: 'p', type: 'fraction', describe: '' }, '0.5')).toBe(0.5);
    expect(parseValue({ name: 'b', type: 'boolean', describe: '' }, 'false')).toBe(false);
  });

  it.each([
    ['positiveInt', '-3', 'positive integer'],
    ['positiveInt', '1e3', 'positive integer'],
    ['nonNegativeInt', '-1', 'non-negative integer'],
    ['number', 'abc', 'number'],
    ['positiveNumber', '0', 'positive number'],
    ['nonNegativeNumber', '-0.1', 'non-negative number'],
    ['fraction', '1.5', 'number in [0, 1)'],
    ['boolean', 'yes', 'true or false'],
    ['string', '', 'a non-empty value'],
  ] as const)('rejects %s %j', (type, raw, what) => {
    const spec = { name: 'x', type, describe: '' };
    expect(() => parseValue(spec, raw)).toThrow(UsageError);
    expect(() => parseValue(spec, raw)).toThrow(`Expected ${what} for --x but received ${JSON.stringify(raw)}`);
  });
});

describe('comma lists (parseOptionValue)', () => {
  const lr = { name: 'lr', type: 'positiveNumber', describe: '', list: true, keywords: ['find'] } as const;

  it('a list gives an array of values, each parsed as a single value would be; a single value stays a scalar', () => {
    expect(parseOptionValue(lr, '1e-4,3e-4,1e-3')).toEqual([1e-4, 3e-4, 1e-3]);
    expect(parseOptionValue(lr, '1e-3')).toBe(1e-3);
    expect(parseOptionValue(lr, 'find')).toBe('find');
    expect(parseOptionValue({ name: 'optimizer', type: 'enum', choices: ['sgd', 'adam'], describe: '', list: true }, 'sgd,adam')).toEqual(['sgd', 'adam']);
    expect(parseOptionValue({ name: 'seed', type: 'nonNegativeInt', describe: '', list: true }, '0,1,2')).toEqual([0, 1, 2]);
  });

  it.each([
    ['1e-3,abc', 'Expected positive number for --lr but received "abc" (in "1e-3,abc")'],
    ['1e-3,', 'Expected positive number for --lr but received "" (in "1e-3,")'],
    ['1e-3,0', 'Expected positive number for --lr but received "0" (in "1e-3,0")'],
    ['1e-3,find', 'Expected positive number for --lr but received "find" (in "1e-3,find")'],
    ['1e-3,0.001', 'Expected distinct values (0.001 is given twice) for --lr but received "1e-3,0.001"'],
    ['abc', 'Expected positive number for --lr but received "abc"'],
  ])('a bad list %j: one UsageError naming the element', (raw, message) => {
    expect(() => parseOptionValue(lr, raw)).toThrow(UsageError);
    expect(() => parseOptionValue(lr, raw)).toThrow(message);
  });

  it('an option that takes no list reads a comma as part of its value, as before', () => {
    expect(() => parseOptionValue({ name: 'epochs', type: 'positiveInt', describe: '' }, '1,2')).toThrow('Expected positive integer for --epochs but received "1,2"');
  });

  it('train-head: the sweepable options take lists, the help says so, and single values parse as they always did', () => {
    const o = parseCommandLine(['train-head', '--lr', '1e-4,1e-3', '--weight-decay', '0,1e-4', '--dropout', '0,0.5', '--batch-size', '32,64', '--optimizer', 'sgd,adam', '--seed', '0,1']).args.options;
    expect([o['lr'], o['weightDecay'], o['dropout'], o['batchSize'], o['optimizer'], o['seed']]).toEqual([
      [1e-4, 1e-3],
      [0, 1e-4],
      [0, 0.5],
      [32, 64],
      ['sgd', 'adam'],
      [0, 1],
    ]);
    expect(parseCommandLine(['train-head', '--lr', '3e-4', '--seed', '2']).args.options).toMatchObject({ lr: 3e-4, seed: 2, weightDecay: 0 });
    expect(parseCommandLine(['train-head', '--lr=find']).args.options['lr']).toBe('find');
    expect(() => parseCommandLine(['train-head', '--epochs', '1,2'])).toThrow('Expected positive integer for --epochs but received "1,2"');
    const help = helpText(COMMANDS.find((c) => c.name === 'train-head'));
    expect(help).toContain('--lr RATE[,RATE...]|find');
    expect(help).toContain('--weight-decay W[,W...]');
    expect(help).toContain('--seed N[,N...]');
    expect(help).toContain('Options shown with [,...] take a comma list: every combination of the lists is trained (a sweep), from one read of the features.');
    // Commands without lists keep their help as it was.
    expect(helpText(COMMANDS.find((c) => c.name === 'extract'))).not.toContain('[,');
  });
});
