/** A backbone's published files: ResNet-50 publishes IMAGENET1K_V2 (the default) and V1, the others one file. */
import { describe, expect, it } from 'vitest';
import { getBackbone, publishedFiles, publishedMatching, publishedVersion, publishedVersions } from '../../src/backbones/index.js';
import { UsageError } from '../../src/errors.js';
import { thrownSync } from '../helpers/errors.js';

describe('published weights', () => {
  it("ResNet-50 offers torchvision's V2 (the default) and V1 files, with the SHA-256 prefixes of their names", () => {
    const resnet50 = getBackbone('resnet50');
    expect(publishedVersions(resnet50)).toEqual(['v2', 'v1']);
    expect(publishedFiles(resnet50).map((p) => [p.version, p.fileName, p.url, p.sha256Prefix, p.what])).toEqual([
      ['v2', 'resnet50-11ad3fa6.pth', 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth', '11ad3fa6', 'ResNet-50 weights (IMAGENET1K_V2)'],
      ['v1', 'resnet50-0676ba61.pth', 'https://download.pytorch.org/models/resnet50-0676ba61.pth', '0676ba61', 'ResNet-50 weights (IMAGENET1K_V1)'],
    ]);
    expect(publishedVersion(resnet50, undefined)).toBe(resnet50.published);
    expect(publishedVersion(resnet50, 'v1')?.fileName).toBe('resnet50-0676ba61.pth');
  });

  it('finds the published file a recorded SHA-256 belongs to', () => {
    const resnet50 = getBackbone('resnet50');
    expect(publishedMatching(resnet50, `0676ba61${'0'.repeat(56)}`)?.version).toBe('v1');
    expect(publishedMatching(resnet50, `11ad3fa6${'0'.repeat(56)}`)?.version).toBe('v2');
    expect(publishedMatching(resnet50, 'random-resnet50-seed0')).toBeUndefined();
  });

  it('refuses a version a backbone does not publish, naming the ones it does', () => {
    let err = thrownSync(() => publishedVersion(getBackbone('resnet50'), 'v3'));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected one of v2|v1 for --weights-version of resnet50 but received "v3"');
    err = thrownSync(() => publishedVersion(getBackbone('vgg16'), 'v1'));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected nothing (VGG16 publishes one file) for --weights-version of vgg16 but received "v1"');
    expect(publishedVersions(getBackbone('resnet18'))).toEqual([]);
  });
});
