/**
 * The augmentations `extract --augment` caches, as torchvision computes them on a float CHW tensor:
 * `RandomResizedCrop(S, antialias=True)` (the box drawn by its `get_params`, then
 * `F.resized_crop`: a crop, then the antialiased bilinear resize of resize.ts) and `F.hflip`.
 * The draws come from the project's seeded generator (src/random.ts), one stream per image, so an
 * image's views do not depend on the batch size, a shard or a resume.
 */
import { UsageError, expected } from '../errors.js';
import { mulberry32, uniform01 } from '../random.js';
import { resizeBilinearAntialias } from './resize.js';

/** A crop box in torchvision's order of `get_params`' result: top, left, height, width. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** RandomResizedCrop's defaults. */
export const CROP_SCALE: readonly [number, number] = [0.08, 1.0];
export const CROP_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

const f32 = Math.fround;

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision's `RandomResizedCrop.get_params` for an image of `height`×`width`, with `next()`
 * giving uniform draws in [0, 1): per attempt one for the area and one for the log aspect ratio
 * (each becomes float32 as `torch.empty(1).uniform_(a, b)` is), and, when the box fits, one for its
 * top row and one for its left column (`torch.randint(0, n)` as floor(u·n)). After 10 attempts
 * that do not fit, the centre crop clamped to the ratio range.
 */
export function cropParams(height: number, width: number, next: () => number, scale: readonly [number, number] = CROP_SCALE, ratio: readonly [number, number] = CROP_RATIO): CropBox {
  const area = height * width;
  // torch.log(torch.tensor(ratio)): float32 values and a float32 log
  const logLo = f32(Math.log(f32(ratio[0])));
  const logHi = f32(Math.log(f32(ratio[1])));
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * f32(scale[0] + (scale[1] - scale[0]) * next());
    const aspect = f32(Math.exp(f32(logLo + (logHi - logLo) * next())));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = Math.floor(next() * (height - h + 1));
      const left = Math.floor(next() * (width - w + 1));
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  const lo = Math.min(ratio[0], ratio[1]);
  const hi = Math.max(ratio[0], ratio[1]);
  let w = width;
  let h = height;
  if (inRatio < lo) h = roundHalfEven(w / lo);
  else if (inRatio > hi) w = roundHalfEven(h * hi);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** `F.crop` of a box inside a CHW tensor. */
export function cropChw(src: Float32Array, channels: number, height: number, width: number, box: CropBox): Float32Array {
  const { top, left, height: h, width: w } = box;
  if (top < 0 || left < 0 || h <= 0 || w <= 0 || top + h > height || left + w > width) {
    throw new RangeError(`crop: box ${h}×${w} at (${top}, ${left}) outside ${height}×${width}`);
  }
  const out = new Float32Array(channels * h * w);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      const from = (c * height + top + y) * width + left;
      out.set(src.subarray(from, from + w), (c * h + y) * w);
    }
  }
  return out;
}

/** `F.resized_crop(img, top, left, h, w, [outH, outW], BILINEAR, antialias=True)` on a float CHW tensor. */
export function resizedCrop(src: Float32Array, channels: number, height: number, width: number, box: CropBox, outH: number, outW: number): Float32Array {
  return resizeBilinearAntialias(cropChw(src, channels, height, width, box), channels, box.height, box.width, outH, outW);
}

/** `F.hflip`: each row reversed, in place. */
export function hflipInPlace(chw: Float32Array, channels: number, height: number, width: number): Float32Array {
  for (let row = 0; row < channels * height; row++) chw.subarray(row * width, (row + 1) * width).reverse();
  return chw;
}

/** What `--augment` lists: each extra view applies them, in torchvision's order (crop, then flip). */
export type AugmentName = 'flip' | 'crop';
export const AUGMENT_NAMES: readonly AugmentName[] = ['flip', 'crop'];

export interface AugmentSpec {
  /** The transforms each extra view applies (at least one, no repeats). */
  augment: readonly AugmentName[];
  /** Extra views per image (view 0, the original, not counted). */
  views: number;
  seed: number;
}

/** One view of an image: the original (view 0), or a box to crop and whether to mirror. */
export interface ViewPlan {
  box?: CropBox;
  flip: boolean;
}

/**
 * A library caller's guard (the CLI's checks are augmentSpecFrom's): `flip` alone has one extra
 * view (the mirror); with `crop`, every extra view is a RandomResizedCrop, mirrored with
 * probability 1/2 (RandomHorizontalFlip) when `flip` is also listed.
 */
export function checkAugmentSpec(spec: AugmentSpec): void {
  if (spec.augment.length === 0) throw new RangeError('augment: no transform listed');
  for (const a of spec.augment) if (!AUGMENT_NAMES.includes(a)) throw new RangeError(`augment: unknown transform ${JSON.stringify(a)}`);
  if (new Set(spec.augment).size !== spec.augment.length) throw new RangeError(`augment: ${spec.augment.join(',')} repeats a transform`);
  if (!Number.isSafeInteger(spec.views) || spec.views < 1 || spec.views > 255) throw new RangeError(`augment: ${spec.views} extra views (1 to 255)`);
  if (!spec.augment.includes('crop') && spec.views !== 1) throw new RangeError(`augment: flip alone makes 1 extra view (the mirror), not ${spec.views}`);
}

/** Extra views per image `--augment crop` makes when `--views` is not given. */
export const DEFAULT_CROP_VIEWS = 4;

/**
 * `extract --augment LIST [--views K] [--seed N]` as an AugmentSpec, or undefined without --augment;
 * each combination that makes no sense is one UsageError naming the option. `augment` is what the
 * CLI's comma-list enum gives (one name, or several).
 */
export function augmentSpecFrom(o: { augment?: AugmentName | readonly AugmentName[]; views?: number; seed: number; split: 'train' | 'test' | 'all' }): AugmentSpec | undefined {
  const augment = o.augment === undefined ? undefined : typeof o.augment === 'string' ? [o.augment] : [...o.augment];
  if (augment === undefined) {
    if (o.views !== undefined) throw new UsageError(expected('--augment crop or flip,crop alongside it (views of what?)', '--views', o.views));
    return undefined;
  }
  if (o.split === 'test') throw new UsageError(expected('--split train or all with --augment (the test split is never augmented)', '--split', o.split));
  const crop = augment.includes('crop');
  const views = o.views ?? (crop ? DEFAULT_CROP_VIEWS : 1);
  if (!crop && views !== 1) throw new UsageError(expected('1 with --augment flip (the mirror is its one extra view; add crop for more)', '--views', views));
  if (!Number.isSafeInteger(views) || views < 1 || views > 255) throw new UsageError(expected('an integer from 1 to 255 (a view index is stored as a byte)', '--views', views));
  // torchvision's order: RandomResizedCrop, then RandomHorizontalFlip
  const spec = { augment: AUGMENT_NAMES.filter((a) => augment.includes(a)), views, seed: o.seed };
  checkAugmentSpec(spec);
  return spec;
}

/** An image's own draws: mulberry32 seeded by a draw of mulberry32 seeded by (seed, image). */
export function imageStream(seed: number, image: number): () => number {
  return uniform01(mulberry32((seed >>> 0) ^ Math.imul(image + 1, 0x9e3779b9))());
}

/** The extra views of image `image` (height×width before any resize): the same whatever the batch or shard. */
export function planViews(spec: AugmentSpec, image: number, height: number, width: number): ViewPlan[] {
  const next = imageStream(spec.seed, image);
  const crop = spec.augment.includes('crop');
  const flip = spec.augment.includes('flip');
  const plans: ViewPlan[] = [];
  for (let v = 0; v < spec.views; v++) {
    if (!crop) {
      plans.push({ flip: true });
      continue;
    }
    const box = cropParams(height, width, next);
    // RandomHorizontalFlip: torch.rand(1) < p
    plans.push({ box, flip: flip && next() < 0.5 });
  }
  return plans;
}

/**
 * One view of a [0, 1] float CHW image as an S×S tensor, before Normalize: the crop resized to S
 * (the whole image resized to S without a box), then mirrored.
 */
export function applyView(src: Float32Array, height: number, width: number, size: number, plan: ViewPlan): Float32Array {
  const out = plan.box ? resizedCrop(src, 3, height, width, plan.box, size, size) : resizeBilinearAntialias(src, 3, height, width, size, size);
  // resize hands back its input when nothing changes: copy before mirroring in place
  const own = out === src ? Float32Array.from(out) : out;
  return plan.flip ? hflipInPlace(own, 3, size, size) : own;
}
