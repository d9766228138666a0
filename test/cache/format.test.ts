import { describe, expect, it } from 'vitest';
import { MismatchError } from '../../src/errors.js';
import { assertSameIdentity, attrProblems, chunkRowsFor, classifierInputText, defaultCachePath, extractCommandFor, rowShape, rowsPhrase, withoutAdvice } from '../../src/cache/format.js';
import type { CacheIdentity } from '../../src/cache/types.js';

describe('cache naming', () => {
  it("defaults to cache/<data>-vgg16-<size>.h5, using a folder's name", () => {
    expect(defaultCachePath('cifar10', 32)).toBe('cache/cifar10-vgg16-32.h5');
    expect(defaultCachePath('digits', 224)).toBe('cache/digits-vgg16-224.h5');
    expect(defaultCachePath('photos/pets/', 64)).toBe('cache/pets-vgg16-64.h5');
  });

  it('suggests the extract command for a cache path', () => {
    expect(extractCommandFor('cache/digits-vgg16-32.h5', 'train')).toBe('headstart extract --data digits --split train');
    expect(extractCommandFor('cache/cifar10-vgg16-224.h5', 'test')).toBe('headstart extract --data cifar10 --image-size 224 --split test');
    expect(extractCommandFor('/tmp/x/digits-vgg16-32.h5', 'test')).toBe('headstart extract --data digits --cache /tmp/x/digits-vgg16-32.h5 --split test');
    expect(extractCommandFor('mine.h5', 'train')).toBe('headstart extract --cache mine.h5 --split train');
    expect(extractCommandFor('cache/pets-vgg16-32.h5', 'train')).toBe('headstart extract --data <path to pets/> --split train');
  });
});

describe('layout', () => {
  it('row shapes and the classifier-input text', () => {
    expect(rowShape('map', [512, 1, 1])).toEqual([512, 1, 1]);
    expect(rowShape('pooled', [512, 7, 7])).toEqual([25088]);
    expect(classifierInputText('map', [512, 1, 1])).toBe('map at 1x1: avgpool replicates each of the C values into 49 cells; input index c*49+k');
    expect(classifierInputText('map', [512, 7, 7])).toBe('map at 7x7: AdaptiveAvgPool2d((7,7)) then flatten(1); input index c*49+i*7+j');
    expect(classifierInputText('pooled', [25088])).toBe('pooled: AdaptiveAvgPool2d((7,7)) then flatten(1), stored as is; input index c*49+i*7+j');
  });

  it('chunks of at most 256 rows and about 1 MiB', () => {
    expect(chunkRowsFor(512)).toBe(256);
    expect(chunkRowsFor(25088)).toBe(10);
    expect(chunkRowsFor(10_000_000)).toBe(1);
  });
});

describe('identity', () => {
  const base: CacheIdentity = { weightsId: 'w', imageSize: 32, layout: 'map', mean: [0.5], std: [0.25], classes: ['a', 'b'], dataName: 'd', dataSource: '/x', splitRule: 'r' };
  it('ignores where the data came from but not the classes', () => {
    expect(() => assertSameIdentity('f.h5', 'Feature cache', base, { ...base, dataSource: '/elsewhere' })).not.toThrow();
    expect(() => assertSameIdentity('f.h5', 'Feature cache', base, { ...base, classes: ['a', 'c'] })).toThrow(MismatchError);
    expect(() => assertSameIdentity('f.h5', 'Feature cache', base, { ...base, classes: ['a', 'c'] })).toThrow(
      'Feature cache f.h5 was made with classes "a,b" but this run has "a,c"; pass --force to replace it',
    );
  });
});

describe('problem phrases', () => {
  it('names the first rows and counts the rest', () => {
    expect(rowsPhrase([12], 1)).toBe('row 12 has');
    expect(rowsPhrase([12, 13], 2)).toBe('rows 12 and 13 have');
    expect(rowsPhrase([12, 13, 20], 3)).toBe('rows 12, 13 and 20 have');
    expect(rowsPhrase([12, 13, 20], 32)).toBe('rows 12, 13 and 30 more have');
  });

  it("drops the reader's advice for callers that give their own", () => {
    expect(withoutAdvice('Feature cache x.h5 has layout "map"; extract it again with --force')).toBe('Feature cache x.h5 has layout "map"');
    expect(withoutAdvice('cache x.h5 is damaged, so extract it again with --force')).toBe('cache x.h5 is damaged');
    expect(withoutAdvice('no advice here')).toBe('no advice here');
  });

  it('finds what root attributes say that cannot all be true', () => {
    const attrs = {
      weightsId: 'w',
      imageSize: 224,
      layout: 'map' as const,
      mean: [0.5],
      std: [0.25],
      classes: ['a', 'b'],
      dataName: 'd',
      dataSource: '/x',
      splitRule: 'r',
      formatVersion: 1,
      toolVersion: 't',
      featureShape: [512, 7, 7],
      classifierInput: '',
      counts: { train: 3 },
    };
    expect(attrProblems(attrs)).toEqual([]);
    expect(attrProblems({ ...attrs, layout: 'pooled', featureShape: [25088] })).toEqual([]);
    expect(attrProblems({ ...attrs, layout: 'pooled' })).toEqual(['has layout "pooled" but feature_shape [512, 7, 7]; expected a pooled row [C*49] (or layout "map" for [C, h, w] rows)']);
    expect(attrProblems({ ...attrs, featureShape: [512, 1, 1] })).toEqual(['has feature_shape [512, 1, 1] but image_size 224; VGG16 maps 224×224 images to 7×7']);
    expect(attrProblems({ ...attrs, featureShape: [512, 0, 7] })).toEqual(['has feature_shape [512, 0, 7]; expected positive whole dimensions']);
    expect(attrProblems({ ...attrs, counts: { train: -1 } })).toEqual(['has train_count -1; expected a row count']);
  });
});
