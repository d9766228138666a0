/**
 * The command tables are tied to the library's options types as vitest ties its CLI table to its
 * config type: the `@ts-expect-error` lines below are checked by `tsc --noEmit` (npm run lint),
 * which fails if any of them stops being an error.
 */
import { describe, expect, it } from 'vitest';
import type { TrainHeadCommandOptions } from '../src/api/types.js';
import { COMMANDS, type FlagSpec, type OptionTable } from '../src/commands.js';

describe('command tables', () => {
  it('refuse, at compile time, a key the options type lacks and a flag whose value does not fit its field', () => {
    const table: OptionTable<TrainHeadCommandOptions> = {
      epochs: { name: 'epochs', type: 'positiveInt', describe: 'n' },
      lr: { name: 'lr', type: 'positiveNumber', describe: 'rate', list: true, keywords: ['find'] },
      // @ts-expect-error: no such option in TrainHeadCommandOptions
      epoch: { name: 'epoch', type: 'positiveInt', describe: 'n' },
    };
    // @ts-expect-error: a string flag cannot feed a number
    const wrongType: FlagSpec<number> = { name: 'epochs', type: 'string', describe: 'n' };
    // @ts-expect-error: a field of string literals takes an enum flag, not any string
    const notEnum: FlagSpec<'sgd' | 'adam'> = { name: 'optimizer', type: 'string', describe: 'o' };
    // @ts-expect-error: a choice that is not a value of the field
    const badChoice: FlagSpec<'sgd' | 'adam'> = { name: 'optimizer', type: 'enum', choices: ['sgd', 'rmsprop'], describe: 'o' };
    // @ts-expect-error: a comma list for a field that takes one value
    const notList: FlagSpec<number> = { name: 'epochs', type: 'positiveInt', describe: 'n', list: true };
    // @ts-expect-error: a keyword the field does not take
    const badKeyword: FlagSpec<number | 'find'> = { name: 'lr', type: 'positiveNumber', describe: 'r', keywords: ['auto'] };
    expect([table, wrongType, notEnum, badChoice, notList, badKeyword]).toHaveLength(6);
  });

  it('set the options under the library keys, each flag once', () => {
    for (const c of COMMANDS) {
      const keys = c.options.map((f) => f.key);
      const names = c.options.map((f) => f.name);
      expect(new Set(keys).size, c.name).toBe(keys.length);
      expect(new Set(names).size, c.name).toBe(names.length);
      for (const f of c.options) expect(f.key, `${c.name} --${f.name}`).toBe(f.name.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase()));
    }
  });
});
