/**
 * `extract` (the library) and `headstart extract` (its CLI adapter): weights → trunk → features of
 * the requested split(s) in the HDF5 cache, with progress and a summary line per split through the
 * reporter. Ctrl-C (the adapter aborts the signal) stops after the current batch; what is done stays
 * in the part file and the next run resumes there. A second Ctrl-C ends the process at once, which
 * is safe too (the journal only counts fsynced rows).
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultWeightsPath, getBackbone, loadBackboneWeights, type BackboneWeights } from '../backbones/index.js';
import { defaultCachePath, shardCachePath, shardSplitRule } from '../cache/format.js';
import type { CacheIdentity, CacheSplitName, FeatureLayout } from '../cache/types.js';
import { openDataset, requireTwoClasses } from '../data/dataset.js';
import { hasOwnVal } from '../data/image-folder.js';
import { valSplitRule } from '../data/sources.js';
import type { Dataset } from '../data/types.js';
import { UsageError, expected } from '../errors.js';
import { formatRate, formatBytes } from '../progress.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { EXTRACT_DEFAULTS, FALLBACK_IMAGE_SIZE, withDefaults } from '../api/defaults.js';
import { resolveHooks } from '../api/reporter.js';
import type { ExtractOptions, ExtractResult, ExtractShard, ExtractedSplit, Hooks, ProgressTask } from '../api/types.js';
import { contextHooks, interruptible } from '../run-context.js';
import { extractSplit } from './extract.js';
import { resolveShard, shardDataset, shardRows } from './shard.js';
import { AUGMENT_NAMES, type AugmentName, augmentSpecFrom } from '../data/augment.js';
import { isViewsDataset, viewsDataset } from '../data/views.js';
import { trunkFeatureShape } from './graph.js';
import { openTrunk } from './trunk.js';
import type { Calibration, Trunk } from './types.js';
import { int8Identity, resolveCalibration } from './calibrate.js';
import { elementCount } from '../shape.js';

const BUILT_IN = new Set(['cifar10', 'digits']);

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** How rows were assigned to train and test; part of the cache's identity. */
function splitRule(data: string, testFraction: number, seed: number): string {
  if (BUILT_IN.has(data)) return `the ${data} data set's own train and test splits`;
  if (isDir(join(data, 'train')) && isDir(join(data, 'test'))) return 'train/ and test/ folders';
  return `test-fraction ${testFraction} seed ${seed}, per class`;
}

const count = (n: number): string => n.toLocaleString('en-US');

/** `--augment`'s comma list (or a library caller's array) as transform names; a name not known, or one twice, is a UsageError. */
export function augmentNames(value: string | readonly string[] | undefined): AugmentName[] | undefined {
  if (value === undefined) return undefined;
  const names = typeof value === 'string' ? value.split(',').map((n) => n.trim()) : [...value];
  const bad = names.length === 0 || names.some((n) => !(AUGMENT_NAMES as readonly string[]).includes(n)) || new Set(names).size !== names.length;
  if (bad) throw new UsageError(expected(`flip, crop or flip,crop (each of ${AUGMENT_NAMES.join(', ')} at most once)`, '--augment', typeof value === 'string' ? value : names.join(',')));
  return names as AugmentName[];
}

/**
 * Runs the backbone over the data set's split(s) into the feature cache; a split already complete
 * there is reused, a part file resumed. `hooks.signal` stops it after the current batch
 * (ExtractionStopped); what is done stays for the next run.
 */
export async function extract(options: ExtractOptions = {}, hooks: Hooks = {}): Promise<ExtractResult> {
  const o = withDefaults(EXTRACT_DEFAULTS, options);
  const { reporter, clock, env, signal } = resolveHooks(hooks);
  const { data, dataDir, seed, testFraction, valFraction, batchSize, force } = o;
  const layout: FeatureLayout = o.pooled ? 'pooled' : 'map';
  const backbone = getBackbone(o.backbone, '--backbone', { output: o.output, mean: o.mean, std: o.std });
  const imageSize = o.imageSize ?? backbone.preprocessing.imageSize ?? FALLBACK_IMAGE_SIZE;
  if (o.pooled && backbone.head.input === 'flatten')
    throw new UsageError(expected(`no --pooled with ${backbone.name} (its trunk ends in global pooling: --pooled would store each of its features 49 times)`, '--pooled', true));
  const withVal = valFraction > 0 || (!BUILT_IN.has(data) && (await hasOwnVal(resolve(data))));
  const splits: CacheSplitName[] = o.split === 'all' ? (withVal ? ['train', 'val', 'test'] : ['train', 'test']) : [o.split];
  const shard = resolveShard(o.shard, o.shards, env);
  if (o.augment !== undefined && o.split === 'val') throw new UsageError(expected('--split train or all with --augment (the val split is never augmented)', '--split', o.split));
  const augment = augmentSpecFrom({ augment: augmentNames(o.augment), views: o.views, seed, split: o.split === 'val' ? 'train' : o.split });
  if (shard !== undefined && o.split === 'all') throw new UsageError(expected('--split train or --split test with a shard (one split at a time)', '--split', 'all'));
  const givenCache = o.cache ?? defaultCachePath(data, imageSize, 'cache', backbone.id);
  // Every worker of a job gets the same --cache: each makes its own file from it (unless it already names this shard's).
  const cachePath = shard === undefined || givenCache.endsWith(shardCachePath('.h5', shard.index, shard.count)) ? givenCache : shardCachePath(givenCache, shard.index, shard.count);
  const note = (line: string): void => reporter.note(line);
  if (shard !== undefined) note(`Shard ${shard.index} of ${shard.count} (0-based, from ${shard.from}) into ${cachePath}`);

  let trunkWeights: BackboneWeights;
  let weightsId: string;
  if (o.randomWeights) {
    trunkWeights = { backbone, weights: backbone.random.make(seed, { classifier: false }) };
    weightsId = backbone.random.id(seed);
    note(`Warning: using randomly initialised ${backbone.name} weights (seed ${seed}); accuracy will not reflect transfer learning`);
  } else {
    const loaded = await loadBackboneWeights(backbone, o.weights ?? defaultWeightsPath(backbone));
    trunkWeights = loaded;
    weightsId = loaded.checkpoint.sha256;
  }

  // Also checks the image size against the network before any data is read.
  const featureShape = trunkFeatureShape(trunkWeights, imageSize, layout);
  const rowFloats = elementCount(featureShape);
  let datasets: Dataset[] = [];
  // int8 calibrates on the plain train images, augmented or not, so the same data gives the same scales.
  let plainTrain: Dataset | undefined;
  let splitRows = 0;
  const limitInputPixels = o.maxImagePixels;
  for (const split of splits) {
    const dataset = await openDataset({ data, dataDir, split, imageSize, testFraction, seed, valFraction, limitInputPixels, normalization: backbone.preprocessing });
    requireTwoClasses(dataset, data);
    if (split === 'train') plainTrain = dataset;
    // Only train is augmented: test and val measure the images as they are.
    const made = augment !== undefined && split === 'train' ? viewsDataset(dataset, augment) : dataset;
    if (isViewsDataset(made)) note(`${split}: ${count(made.images)} images × ${made.viewsPerImage} views = ${count(made.length)} rows (--augment ${augment!.augment.join(',')})`);
    datasets.push(made);
    if (shard !== undefined) splitRows = made.length;
  }
  // A shard's rows of the one split (whole images of an augmented one); its rule names the shard, so it is never taken for the whole split.
  const range = shard === undefined ? undefined : shardRows(shard.index, shard.count, datasets[0]!);
  if (range !== undefined) datasets = datasets.map((d) => shardDataset(d, range.first, range.rows));
  const rule = splitRule(data, testFraction, seed) + valSplitRule(valFraction, seed);
  const floatIdentityOf = (dataset: Dataset): CacheIdentity => ({
    backbone: backbone.id,
    weightsId,
    imageSize,
    layout,
    mean: [...backbone.preprocessing.mean],
    std: [...backbone.preprocessing.std],
    classes: dataset.classes,
    dataName: dataset.name,
    dataSource: BUILT_IN.has(data) ? dataset.source : resolve(data),
    splitRule: shard === undefined ? rule : shardSplitRule(rule, shard.index, shard.count),
  });

  // int8: one set of scales for every split and shard, from the first images of the whole train
  // split (or the ones the cache or a part file already records for the same data).
  let calibration: Calibration | undefined;
  if (o.precision === 'int8') {
    const calibrationSet = plainTrain ?? (await openDataset({ data, dataDir, split: 'train', imageSize, testFraction, seed, valFraction, limitInputPixels, normalization: backbone.preprocessing }));
    const resolved = await resolveCalibration({ ...trunkWeights, imageSize, cachePath, identity: floatIdentityOf(calibrationSet), dataset: calibrationSet, force, onNote: note });
    calibration = resolved.calibration;
  }
  const identityOf = (dataset: Dataset): CacheIdentity => (calibration === undefined ? floatIdentityOf(dataset) : int8Identity(floatIdentityOf(dataset), calibration));

  // The trunk (an ONNX model to build or load, a session to start) is opened only if some split
  // needs it: extractSplit asks for it after finding the split missing from the cache.
  let trunk: Trunk | undefined;
  const openOnce = async (): Promise<Trunk> =>
    (trunk ??= await openTrunk({ backbone, weights: trunkWeights.weights, weightsId, imageSize, output: layout, device: o.device, precision: o.precision, calibration, onNote: note }));
  const results: ExtractedSplit[] = [];
  try {
    for (const dataset of datasets) {
      const attrs = identityOf(dataset);
      const split = dataset.split;
      const bytes = dataset.length * rowFloats * 4;
      const viewed = isViewsDataset(dataset) ? { images: dataset.images, viewsPerImage: dataset.viewsPerImage } : {};
      // Made on the first progress report, once the trunk is running: a reused split shows none.
      let task: ProgressTask | undefined;
      const r = await extractSplit({
        dataset,
        trunk: openOnce,
        cachePath,
        attrs,
        // A batch of whole images: one at a batch's edge would be decoded twice.
        batchSize: isViewsDataset(dataset) ? Math.ceil(batchSize / dataset.viewsPerImage) * dataset.viewsPerImage : batchSize,
        force,
        onNote: note,
        signal,
        clock,
        shard: shard === undefined || range === undefined ? undefined : { index: shard.index, count: shard.count, firstRow: range.first, splitRows },
        onProgress: (done, total) => (task ??= reporter.progress(`extract ${split}`, 'images')).update(done, total),
      }).finally(() => task?.finish());
      if (r.reused) {
        results.push({ split, count: dataset.length, seconds: 0, imagesPerSecond: 0, provider: null, bytes, reused: true, resumedFrom: dataset.length, ...viewed });
        continue;
      }
      const { provider } = await openOnce();
      const made = r.count - r.resumedFrom;
      const rate = r.seconds > 0 ? made / r.seconds : 0;
      results.push({ split, count: r.count, seconds: r.seconds, imagesPerSecond: rate, provider, bytes, reused: r.reused, resumedFrom: r.resumedFrom, ...viewed });
      const resumed = r.resumedFrom > 0 ? ` (resumed at ${count(r.resumedFrom)})` : '';
      note(`${split}: ${count(made)} images in ${r.seconds.toFixed(1)}s, ${formatRate(rate)} images/s on ${provider}${resumed}, ${formatBytes(bytes)}`);
    }
  } finally {
    await trunk?.close();
  }
  const shardData = shard === undefined || range === undefined ? undefined : { index: shard.index, count: shard.count, firstRow: range.first, rows: range.rows, splitRows };
  return {
    cache: cachePath,
    splits: results,
    ...(shardData === undefined ? {} : { shard: shardData }),
    dataName: datasets[0]!.name,
    layout,
    featureShape,
    imageSize,
    weightsId,
    precision: o.precision,
  };
}

/** What `extract --json` prints: the cache, its splits, and the shard. */
export function extractJson(r: ExtractResult): { cache: string; splits: ExtractedSplit[]; shard?: ExtractShard } {
  return { cache: r.cache, splits: r.splits, ...(r.shard === undefined ? {} : { shard: r.shard }) };
}

/** The summary line: what the cache holds, and the shard's rows. */
export function formatExtract(r: ExtractResult): string {
  const held = r.splits
    .map((s) => `${s.split} (${s.images === undefined ? `${count(s.count)} images` : `${count(s.images)} images × ${s.viewsPerImage} views = ${count(s.count)} rows`})`)
    .join(' and ');
  const int8 = r.precision === 'int8' ? ', int8 trunk' : '';
  const text = `Feature cache ${r.cache}: ${held} of ${r.dataName}, ${r.layout === 'map' ? 'trunk map' : 'pooled features'} ${r.featureShape.join('x')} per image, image size ${r.imageSize}, weights ${r.weightsId}${int8}`;
  const s = r.shard;
  const shardText = s === undefined ? '' : `; shard ${s.index} of ${s.count}: rows ${s.firstRow}-${s.firstRow + s.rows - 1} of ${s.splitRows} (headstart merge joins the shards)`;
  return `${text}${shardText}`;
}

/** `headstart extract`: Ctrl-C stops after the current batch (a second one quits at once). */
export async function runExtract(args: CommandArgs<ExtractOptions>, ctx: RunContext): Promise<CommandResult> {
  const r = await interruptible(ctx, '\nStopping after the current batch; run the same command again to resume (Ctrl-C again quits at once)', (signal) =>
    extract(args.options, contextHooks(ctx, signal)),
  );
  return { text: formatExtract(r), data: extractJson(r) };
}
