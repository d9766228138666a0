/**
 * A train split with its augmented views (`extract --augment`): for each image, the original
 * (view 0, exactly the rows the plain split gives) and then its `views` extra views (augment.ts),
 * so row r is view r mod (views + 1) of image floor(r / (views + 1)). It is itself a Dataset of
 * rows, batched and prefetched as batches.ts does (a batch decodes only the images its rows need),
 * so extraction, resume and shards work on it unchanged; `views` is the per-row column the cache
 * records.
 */
import { applyView, checkAugmentSpec, planViews, type AugmentSpec, type ViewPlan } from './augment.js';
import { prefetchBatches } from './batches.js';
import { normalizedFromPlanar, normalizeInPlace, planarToTensor } from './preprocess.js';
import type { Dataset, DatasetBatch, PlanarImage } from './types.js';
import type { SplitAugment } from '../cache/augment.js';

export interface ViewsDataset extends Dataset {
  /** Images of the split (length is rows: images × viewsPerImage). */
  images: number;
  /** 1 + the extra views. */
  viewsPerImage: number;
  /** Per row, its view: 0 for the original, 1… for the extra views. */
  views: Uint8Array;
  spec: AugmentSpec;
}

/** Row r's image and view. */
export function viewOfRow(row: number, viewsPerImage: number): { image: number; view: number } {
  return { image: Math.floor(row / viewsPerImage), view: row % viewsPerImage };
}

/** The per-row view column of `images` images with `viewsPerImage` views each. */
export function viewColumn(images: number, viewsPerImage: number): Uint8Array {
  const out = new Uint8Array(images * viewsPerImage);
  for (let r = 0; r < out.length; r++) out[r] = r % viewsPerImage;
  return out;
}

/** One view of a decoded image as the trunk's input: normalised [3, S, S], into `out` at `offset`. */
function writeView(img: PlanarImage, plan: ViewPlan | undefined, size: number, out: Float32Array, offset: number): void {
  if (!plan) {
    normalizedFromPlanar(img.planar, img.width, img.height, size, out, offset);
    return;
  }
  out.set(normalizeInPlace(applyView(planarToTensor(img.planar), img.height, img.width, size, plan)), offset);
}

/** The train split `dataset` with `spec.views` extra views of each image after it. Test splits are never augmented. */
export function viewsDataset(dataset: Dataset, spec: AugmentSpec): ViewsDataset {
  checkAugmentSpec(spec);
  if (dataset.split !== 'train') throw new RangeError(`views: only a train split is augmented, not ${dataset.split}`);
  const rawImages = dataset.rawImages?.bind(dataset);
  if (!rawImages) throw new RangeError(`views: data set ${dataset.name} gives no decoded images to augment`);
  const per = spec.views + 1;
  const size = dataset.imageSize;
  const pixels = 3 * size * size;
  const images = dataset.length;
  const length = images * per;
  const labels = new Uint8Array(length);
  for (let r = 0; r < length; r++) labels[r] = dataset.labels[Math.floor(r / per)]!;
  const make = async (start: number, count: number): Promise<DatasetBatch> => {
    const first = Math.floor(start / per);
    const last = Math.floor((start + count - 1) / per);
    const decoded = await rawImages(first, last - first + 1);
    const plans = new Map<number, ViewPlan[]>();
    const out = new Float32Array(count * pixels);
    for (let i = 0; i < count; i++) {
      const { image, view } = viewOfRow(start + i, per);
      const img = decoded[image - first]!;
      let plan: ViewPlan[] | undefined;
      if (view > 0) {
        plan = plans.get(image) ?? planViews(spec, image, img.height, img.width);
        plans.set(image, plan);
      }
      writeView(img, plan?.[view - 1], size, out, i * pixels);
    }
    return { start, count, images: out, labels: labels.slice(start, start + count) };
  };
  return {
    name: dataset.name,
    source: dataset.source,
    classes: dataset.classes,
    split: dataset.split,
    length,
    imageSize: size,
    labels,
    batches: (options) => prefetchBatches(length, options, make),
    images,
    viewsPerImage: per,
    views: viewColumn(images, per),
    spec,
  };
}

export function isViewsDataset(dataset: Dataset): dataset is ViewsDataset {
  return 'views' in dataset && (dataset as Partial<ViewsDataset>).views instanceof Uint8Array;
}

/** What the cache records of a views dataset's augmentation (its split's group attributes). */
export function splitAugmentOf(dataset: ViewsDataset): SplitAugment {
  return { augment: dataset.spec.augment.join(','), views: dataset.spec.views, seed: dataset.spec.seed, images: dataset.images };
}
