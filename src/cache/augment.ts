/**
 * A train split of augmented views (`extract --augment`): its group's attributes say how the rows
 * were made (AUGMENT_ATTRS), and its `views` column (columns.ts) gives each row's view: an image's
 * original (0) and then its extra views 1…K, so row r is view r mod (K + 1) of image floor(r / (K + 1)).
 * The attributes are part of the split's identity: a plain train split is never taken for an
 * augmented one, or the other way round, and a part file resumes only for the same augmentation.
 */
import { type Group, attrValue, toNumbers } from './h5.js';

/** How a split's rows were augmented; absent for a plain split. */
export interface SplitAugment {
  /** The transforms, comma-separated in the order applied: `flip`, `crop` or `crop,flip`. */
  augment: string;
  /** Extra views per image (K). */
  views: number;
  seed: number;
  /** Images of the split (its rows are images × (K + 1)). */
  images: number;
}

export const AUGMENT_ATTRS = { augment: 'augment', views: 'augment_views', seed: 'augment_seed', images: 'images' } as const;

export function augmentGroupAttrs(a: SplitAugment): Record<string, string | number> {
  return { [AUGMENT_ATTRS.augment]: a.augment, [AUGMENT_ATTRS.views]: a.views, [AUGMENT_ATTRS.seed]: a.seed, [AUGMENT_ATTRS.images]: a.images };
}

/** The augmentation a split group records; undefined for a plain one (no `augment` attribute). Call inside readQuietly. */
export function readSplitAugment(group: Group): SplitAugment | undefined {
  const augment = attrValue(group, AUGMENT_ATTRS.augment);
  if (augment === undefined) return undefined;
  const num = (name: string): number => toNumbers(attrValue(group, name))?.[0] ?? Number.NaN;
  return { augment: typeof augment === 'string' ? augment : String(augment), views: num(AUGMENT_ATTRS.views), seed: num(AUGMENT_ATTRS.seed), images: num(AUGMENT_ATTRS.images) };
}

/** In words, for messages and `inspect`. */
export function describeAugment(a: SplitAugment | undefined): string {
  if (a === undefined) return 'plain (no --augment)';
  return `--augment ${a.augment} --views ${a.views} --seed ${a.seed} (${a.images.toLocaleString('en-US')} images × ${a.views + 1} views)`;
}

export function sameAugment(a: SplitAugment | undefined, b: SplitAugment | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.augment === b.augment && a.views === b.views && a.seed === b.seed && a.images === b.images;
}

/**
 * Why the `views` column of a split recorded as `a` is not its images' views in order (the first
 * wrong row), or a row count that is not images × (K + 1); undefined when it is right.
 */
export function viewsColumnProblem(a: SplitAugment, count: number, views: Uint8Array | undefined): string | undefined {
  const per = a.views + 1;
  if (!Number.isSafeInteger(a.images) || !Number.isSafeInteger(a.views) || a.views < 1 || a.images * per !== count)
    return `records ${a.images} images × ${per} views (${AUGMENT_ATTRS.images}, ${AUGMENT_ATTRS.views}) but has ${count} rows`;
  if (views === undefined) return `records --augment ${a.augment} but has no views column`;
  for (let r = 0; r < count; r++) {
    const want = r % per;
    if (views[r] !== want) return `has view ${views[r]} at row ${r}; expected ${want} (image ${Math.floor(r / per)}'s rows together, its original (view 0) first, then views 1 to ${a.views})`;
  }
  return undefined;
}
