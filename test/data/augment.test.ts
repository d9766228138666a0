import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { DEFAULT_CROP_VIEWS, augmentSpecFrom, applyView, checkAugmentSpec, cropParams, hflipInPlace, planViews, resizedCrop, roundHalfEven, type AugmentSpec } from '../../src/data/augment.js';
import { resizeBilinearAntialias } from '../../src/data/resize.js';
import { thrownSync } from '../helpers/errors.js';
import { fixturePath } from '../helpers/fixtures.js';

interface Fixture {
  crops: { height: number; width: number; pixels: number[]; cases: { box: number[]; size: number; out: number[]; flipped: number[] }[] };
  params: { height: number; width: number; draws: number[]; used: number; box: number[] }[];
}
const fixture = JSON.parse(readFileSync(fixturePath('data/augment.json'), 'utf8')) as Fixture;

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function drawsFrom(values: number[]): { next: () => number; used: () => number } {
  let i = 0;
  return {
    next: () => {
      if (i >= values.length) throw new Error('ran out of draws');
      return values[i++]!;
    },
    used: () => i,
  };
}

describe('resized crop and flip (torchvision F.resized_crop antialias=True, F.hflip)', () => {
  const { height, width } = fixture.crops;
  const img = Float32Array.from(fixture.crops.pixels, (b) => Math.fround(b / 255));
  for (const c of fixture.crops.cases) {
    const [top, left, h, w] = c.box as [number, number, number, number];
    it(`matches torchvision for box ${h}×${w} at (${top}, ${left}) → ${c.size}×${c.size}`, () => {
      const out = resizedCrop(img, 3, height, width, { top, left, height: h, width: w }, c.size, c.size);
      expect(maxAbs(out, c.out)).toBeLessThanOrEqual(2.5e-7);
      expect(maxAbs(hflipInPlace(out, 3, c.size, c.size), c.flipped)).toBeLessThanOrEqual(2.5e-7);
    });
  }

  it('refuses a box outside the image', () => {
    expect(() => resizedCrop(img, 3, height, width, { top: 5, left: 0, height: 9, width: 4 }, 4, 4)).toThrow(/outside 13×17/);
  });

  it('applyView: a flip alone mirrors the plain resize; the source is never changed', () => {
    const before = Float32Array.from(img);
    const plain = resizeBilinearAntialias(img, 3, height, width, 8, 8);
    const mirrored = applyView(img, height, width, 8, { flip: true });
    for (let row = 0; row < 3 * 8; row++) expect(Array.from(mirrored.subarray(row * 8, row * 8 + 8))).toEqual(Array.from(plain.subarray(row * 8, row * 8 + 8)).reverse());
    // same size: resize gives its input back, which must not be mirrored in place
    applyView(img, height, width, 13, { flip: true, box: { top: 0, left: 0, height: 13, width: 13 } });
    expect(Array.from(img)).toEqual(Array.from(before));
    const square = img.subarray(0, 3 * 13 * 13);
    const copy = Float32Array.from(square);
    applyView(square, 13, 13, 13, { flip: true });
    expect(Array.from(square)).toEqual(Array.from(copy));
  });
});

describe('RandomResizedCrop.get_params, ported', () => {
  for (const [n, p] of fixture.params.entries()) {
    it(`gives torchvision's box for ${p.height}×${p.width}, draws #${n}${p.used === 20 ? ' (centre-crop fallback)' : ''}`, () => {
      const draws = drawsFrom(p.draws);
      const box = cropParams(p.height, p.width, draws.next);
      expect([box.top, box.left, box.height, box.width]).toEqual(p.box);
      expect(draws.used()).toBe(p.used);
    });
  }

  it('the fixtures reach both the sampled boxes and the fallback', () => {
    expect(fixture.params.some((p) => p.used === 20)).toBe(true);
    expect(fixture.params.some((p) => p.used < 20)).toBe(true);
  });

  it('keeps every box inside the image, its area within scale and its ratio near the range', () => {
    let next = 0.123;
    const lcg = (): number => (next = (next * 9301 + 0.49297) % 1);
    for (const [h, w] of [
      [32, 32],
      [224, 300],
      [5, 90],
      [90, 5],
      [1, 1],
    ] as const) {
      for (let k = 0; k < 200; k++) {
        const b = cropParams(h, w, lcg);
        expect(b.top).toBeGreaterThanOrEqual(0);
        expect(b.left).toBeGreaterThanOrEqual(0);
        expect(b.height).toBeGreaterThan(0);
        expect(b.width).toBeGreaterThan(0);
        expect(b.top + b.height).toBeLessThanOrEqual(h);
        expect(b.left + b.width).toBeLessThanOrEqual(w);
        if (h === 32) {
          // at 32×32 rounding moves the area little: between 8% (less rounding) and 100%
          expect(b.height * b.width).toBeGreaterThanOrEqual(Math.floor(0.08 * 1024 * 0.8));
          expect(b.width / b.height).toBeGreaterThan(0.5);
          expect(b.width / b.height).toBeLessThan(2);
        }
      }
    }
  });

  it("rounds halves to even, as Python's round()", () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, -0, 2, 3]);
  });
});

describe('view plans', () => {
  const spec: AugmentSpec = { augment: ['flip', 'crop'], views: 6, seed: 3 };

  it("are an image's own: the same for the same seed and image, others for another", () => {
    expect(planViews(spec, 7, 32, 32)).toEqual(planViews(spec, 7, 32, 32));
    expect(planViews(spec, 7, 32, 32)).not.toEqual(planViews(spec, 8, 32, 32));
    expect(planViews(spec, 7, 32, 32)).not.toEqual(planViews({ ...spec, seed: 4 }, 7, 32, 32));
  });

  it('flip alone is the mirror; crop alone never mirrors; flip,crop mirrors about half', () => {
    expect(planViews({ augment: ['flip'], views: 1, seed: 0 }, 0, 8, 8)).toEqual([{ flip: true }]);
    const crops = planViews({ augment: ['crop'], views: 50, seed: 0 }, 0, 32, 32);
    expect(crops.every((p) => p.box && !p.flip)).toBe(true);
    const both = Array.from({ length: 40 }, (_, i) => planViews(spec, i, 32, 32)).flat();
    const flipped = both.filter((p) => p.flip).length / both.length;
    expect(flipped).toBeGreaterThan(0.4);
    expect(flipped).toBeLessThan(0.6);
  });

  it('refuses specs that make no sense', () => {
    expect(() => checkAugmentSpec({ augment: [], views: 1, seed: 0 })).toThrow(/no transform/);
    expect(() => checkAugmentSpec({ augment: ['flip'], views: 2, seed: 0 })).toThrow(/flip alone makes 1 extra view/);
    expect(() => checkAugmentSpec({ augment: ['crop', 'crop'], views: 2, seed: 0 })).toThrow(/repeats/);
    expect(() => checkAugmentSpec({ augment: ['crop'], views: 0, seed: 0 })).toThrow(/1 to 255/);
    expect(() => checkAugmentSpec({ augment: ['rotate' as 'crop'], views: 1, seed: 0 })).toThrow(/unknown transform "rotate"/);
    expect(() => checkAugmentSpec({ augment: ['crop', 'flip'], views: 4, seed: 0 })).not.toThrow();
  });
});

describe('extract --augment/--views as a spec', () => {
  const base = { seed: 3, split: 'all' as const };

  it('gives the spec, with the default views and the transforms in torchvision order', () => {
    expect(augmentSpecFrom({ ...base })).toBeUndefined();
    expect(augmentSpecFrom({ ...base, augment: 'flip' })).toEqual({ augment: ['flip'], views: 1, seed: 3 });
    expect(augmentSpecFrom({ ...base, augment: ['flip', 'crop'] })).toEqual({ augment: ['flip', 'crop'], views: DEFAULT_CROP_VIEWS, seed: 3 });
    expect(augmentSpecFrom({ ...base, augment: ['crop', 'flip'], views: 9, split: 'train' })).toEqual({ augment: ['flip', 'crop'], views: 9, seed: 3 });
  });

  it('refuses --views without --augment', () => {
    const err = thrownSync(() => augmentSpecFrom({ ...base, views: 4 }));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected --augment crop or flip,crop alongside it (views of what?) for --views but received 4');
  });

  it('refuses --augment on the test split alone', () => {
    const err = thrownSync(() => augmentSpecFrom({ ...base, augment: 'crop', split: 'test' }));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected --split train or all with --augment (the test split is never augmented) for --split but received "test"');
  });

  it('refuses more than one view of flip alone', () => {
    const err = thrownSync(() => augmentSpecFrom({ ...base, augment: 'flip', views: 3 }));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected 1 with --augment flip (the mirror is its one extra view; add crop for more) for --views but received 3');
  });

  it('refuses more views than a byte can number', () => {
    const err = thrownSync(() => augmentSpecFrom({ ...base, augment: 'crop', views: 256 }));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected an integer from 1 to 255 (a view index is stored as a byte) for --views but received 256');
  });
});
