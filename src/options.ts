import { UsageError, expected } from './errors.js';

/**
 * The one validation helper for option values. Every parser throws a UsageError in the format
 * `Expected <what> for <name> but received "<raw>"`.
 */
export type OptionType = 'string' | 'boolean' | 'positiveInt' | 'nonNegativeInt' | 'number' | 'positiveNumber' | 'nonNegativeNumber' | 'fraction' | 'enum';

export interface OptionSpec {
  /** Long name without dashes, e.g. `epochs`. */
  name: string;
  type: OptionType;
  /** For `enum`. */
  choices?: readonly string[];
  default?: string | number | boolean;
  /** Short help text. */
  describe: string;
  /** Placeholder in help, e.g. `FILE`. */
  arg?: string;
  /** May be given more than once (collects an array). */
  repeat?: boolean;
  /** Takes a comma list (`1e-4,3e-4`): the command gets an array of the values; a single value stays a scalar. */
  list?: boolean;
  /** Words taken as they are in place of a value (`--lr find`), never inside a list. */
  keywords?: readonly string[];
  /** Takes exactly this many comma-separated values (`--mean 0.5,0.5,0.5`; repeats allowed): always an array. */
  tuple?: number;
  /** For `enum`: accepts values beyond `choices` (which then only name them in help and messages), e.g. `onnx:FILE`. */
  accepts?: (raw: string) => boolean;
}

/**
 * An option's value as the command line gives it: a keyword, a comma list (when the spec takes
 * lists: each element checked as a single value would be, a bad one named within the list), or a
 * single value, parsed exactly as parseValue does.
 */
export function parseOptionValue(spec: OptionSpec, raw: string, where = `--${spec.name}`): string | number | boolean | (string | number | boolean)[] {
  if (spec.keywords?.includes(raw)) return raw;
  // An element of a list, checked as a single value would be, a bad one named within the list.
  const element = (value: string): string | number | boolean => {
    try {
      return parseValue(spec, value, where);
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${err.message} (in ${JSON.stringify(raw)})`);
      throw err;
    }
  };
  if (spec.tuple !== undefined) {
    const parts = raw.split(',');
    if (parts.length !== spec.tuple) throw new UsageError(expected(`${spec.tuple} comma-separated values (${spec.arg ?? 'VALUE'})`, where, raw));
    return parts.map(element);
  }
  if (!spec.list || !raw.includes(',')) return parseValue(spec, raw, where);
  const values = raw.split(',').map(element);
  // Two equal values would train the same head twice, into the same folder.
  const seen = new Set<string | number | boolean>();
  for (const v of values) {
    if (seen.has(v)) throw new UsageError(expected(`distinct values (${String(v)} is given twice)`, where, raw));
    seen.add(v);
  }
  return values;
}

export function parseValue(spec: OptionSpec, raw: string, where = `--${spec.name}`): string | number | boolean {
  switch (spec.type) {
    case 'string':
      if (raw === '') throw new UsageError(expected('a non-empty value', where, raw));
      return raw;
    case 'boolean':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      throw new UsageError(expected('true or false', where, raw));
    case 'positiveInt': {
      const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(expected('positive integer', where, raw));
      return n;
    }
    case 'nonNegativeInt': {
      const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n)) throw new UsageError(expected('non-negative integer', where, raw));
      return n;
    }
    case 'number': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n)) throw new UsageError(expected('number', where, raw));
      return n;
    }
    case 'positiveNumber': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n) || n <= 0) throw new UsageError(expected('positive number', where, raw));
      return n;
    }
    case 'nonNegativeNumber': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n) || n < 0) throw new UsageError(expected('non-negative number', where, raw));
      return n;
    }
    case 'fraction': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n) || n < 0 || n >= 1) throw new UsageError(expected('number in [0, 1)', where, raw));
      return n;
    }
    case 'enum': {
      const choices = spec.choices ?? [];
      if (!(spec.accepts?.(raw) ?? choices.includes(raw))) throw new UsageError(expected(`one of ${choices.join('|')}`, where, raw));
      return raw;
    }
  }
}
