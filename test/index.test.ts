import { describe, expect, it } from 'vitest';

describe('the library entry point', () => {
  it('exports each stage of the pipeline as functions', async () => {
    const lib = await import('../src/index.js');
    for (const name of ['loadVgg16', 'openTrunk', 'openDataset', 'extractSplit', 'readCacheSplit', 'trainHead', 'loadHead', 'openPredictor', 'exportOnnx', 'download']) {
      expect(typeof (lib as Record<string, unknown>)[name], name).toBe('function');
    }
    expect(new lib.InputError('x')).toBeInstanceOf(lib.HeadstartError);
  });
});
