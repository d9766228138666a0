import { describe, expect, it } from 'vitest';
import { DEMO_DEFAULTS, EXTRACT_DEFAULTS, PREDICT_DEFAULTS, TRAIN_HEAD_DEFAULTS, withDefaults } from '../../src/api/defaults.js';
import { COMMANDS, commandDefaults, helpText } from '../../src/cli.js';
import { DEFAULT_MAX_IMAGE_PIXELS } from '../../src/data/image.js';

const command = (name: string) => COMMANDS.find((c) => c.name === name)!;

describe('withDefaults', () => {
  it('fills in the defaults; an option given as undefined keeps its default, as an absent flag does', () => {
    const o = withDefaults(TRAIN_HEAD_DEFAULTS, { backend: undefined, epochs: 3, out: undefined });
    expect(o.backend).toBe('auto');
    expect(o.epochs).toBe(3);
    expect(o.optimizer).toBe('sgd');
    expect('out' in o).toBe(false);
  });
});

describe('the one place for defaults', () => {
  it('is what the CLI fills in and its help shows', () => {
    expect(commandDefaults(command('train-head'))).toEqual({ ...TRAIN_HEAD_DEFAULTS });
    expect(commandDefaults(command('extract'))).toEqual({ ...EXTRACT_DEFAULTS });
    expect(commandDefaults(command('demo'))).toEqual({ ...DEMO_DEFAULTS });
    // predict's modelsDir is the library's; the CLI has no flag for it.
    expect(commandDefaults(command('predict'))).toEqual({ device: 'auto', top: 3, maxImagePixels: PREDICT_DEFAULTS.maxImagePixels });
    expect(helpText(command('train-head'))).toContain(
      `--val-fraction F           share of each class's train rows held out (seeded) to pick the epoch; 0: the test split picks it (biased) (default: ${TRAIN_HEAD_DEFAULTS.valFraction})`,
    );
  });

  it("agrees with the image reader's pixel limit (kept apart so that --help does not load sharp)", () => {
    expect(EXTRACT_DEFAULTS.maxImagePixels).toBe(DEFAULT_MAX_IMAGE_PIXELS);
    expect(PREDICT_DEFAULTS.maxImagePixels).toBe(DEFAULT_MAX_IMAGE_PIXELS);
  });
});
