import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseValue } from '../../src/options.js';

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
