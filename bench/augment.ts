/**
 * What cached augmentation changes: test accuracy of heads trained on the bundled digits' features
 * through a seeded random VGG16 (no pretrained file needed), without views and with `--augment`
 * flip / crop / flip,crop, each over several head seeds. Accuracy is the measure (time is printed
 * only as a ratio to the plain run). The features are made in memory through the library (the views
 * data set of src/data/views.ts into the trunk), as `extract --augment` will cache them; the heads
 * train as train-head does (validation 10% of the images, whole images held out; the test split,
 * never augmented, measured once).
 *
 * `npx tsx bench/augment.ts [--views K] [--epochs N] [--seeds 0,1,2] [--augment none,flip,crop,flip+crop] [--data digits] [--image-size 32]`
 */
import { loadavg } from 'node:os';
import { getBackbone } from '../src/backbones/index.js';
import type { AugmentName } from '../src/data/augment.js';
import { openDataset } from '../src/data/dataset.js';
import type { Dataset } from '../src/data/types.js';
import { viewsDataset } from '../src/data/views.js';
import { openTrunk, type Trunk } from '../src/extract/trunk.js';
import { selectBackend } from '../src/head/backend.js';
import { buildHead } from '../src/head/model.js';
import { trainHead } from '../src/head/train.js';
import type { FeatureSplit, TrainSettings } from '../src/head/types.js';
import { holdOut, stratifiedValidation } from '../src/head/validation.js';
import { elementCount } from '../src/shape.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const K = Number(flag('views', '4'));
const epochs = Number(flag('epochs', '10'));
const seeds = flag('seeds', '0,1,2').split(',').map(Number);
const configs = flag('augment', 'none,flip,crop,flip+crop').split(',');
const data = flag('data', 'digits');
const imageSize = Number(flag('image-size', '32'));
const AUGMENT_SEED = 0;

const say = (line: string): void => console.log(line);
const backbone = getBackbone('vgg16');
const trunkWeights = backbone.random.make(0, { classifier: false });
const trunk = await openTrunk({ backbone, weights: trunkWeights, weightsId: backbone.random.id(0), imageSize, output: 'map', device: 'cpu', onNote: (l) => console.error(l) });
const per = elementCount(trunk.featureShape);
say(`${data} ${imageSize}×${imageSize}, random VGG16 (seed 0), map ${trunk.featureShape.join('×')}; load average ${loadavg()[0]!.toFixed(1)}`);

async function features(dataset: Dataset, t: Trunk): Promise<{ features: Float32Array; seconds: number }> {
  const out = new Float32Array(dataset.length * per);
  const started = performance.now();
  for await (const b of dataset.batches({ start: 0, batchSize: 64 })) out.set(await t.run(b.images, b.count), b.start * per);
  return { features: out, seconds: (performance.now() - started) / 1000 };
}

const open = (split: 'train' | 'test'): Promise<Dataset> => openDataset({ data, dataDir: 'data', split, imageSize, testFraction: 0.2, seed: 0 });
const plainTrain = await open('train');
const testSet = await open('test');
const test: FeatureSplit = { count: testSet.length, featureShape: trunk.featureShape, layout: 'map', features: (await features(testSet, trunk)).features, labels: testSet.labels };

/** The train split of a configuration: its rows (views after each image) and the seconds the trunk took. */
async function trainSplit(config: string): Promise<{ split: FeatureSplit; seconds: number }> {
  if (config === 'none') {
    const f = await features(plainTrain, trunk);
    return { split: { count: plainTrain.length, featureShape: trunk.featureShape, layout: 'map', features: f.features, labels: plainTrain.labels }, seconds: f.seconds };
  }
  const augment = config.split('+') as AugmentName[];
  const views = viewsDataset(plainTrain, { augment, views: augment.includes('crop') ? K : 1, seed: AUGMENT_SEED });
  const f = await features(views, trunk);
  return { split: { count: views.length, featureShape: trunk.featureShape, layout: 'map', features: f.features, labels: views.labels, views: views.views }, seconds: f.seconds };
}

// The demo's recipe for random trunk weights (src/demo.ts DEMO_TRAINING.random) with train-head's defaults.
const settings = (seed: number): TrainSettings => ({
  optimizer: 'adam',
  lr: 0.0003,
  weightDecay: 0,
  momentum: 0.9,
  batchSize: 64,
  epochs,
  dropout: 0,
  patience: 0,
  fold: true,
  init: 'random',
  seed,
  valFraction: 0.1,
  monitor: 'val-accuracy',
});

const backend = await selectBackend('auto', { onNote: (l) => console.error(l) });
say(`head backend ${backend.detail}; ${epochs} epochs, head seeds ${seeds.join(',')}, ${K} crop views`);
let plainRate: number | undefined;
const rows: string[] = [];
for (const config of configs) {
  const { split, seconds } = await trainSplit(config);
  const accuracies: number[] = [];
  const valAccuracies: number[] = [];
  for (const seed of seeds) {
    const s = settings(seed);
    // a copy per run: holdOut rearranges a split in memory in place
    const copy = { ...split, features: Float32Array.from(split.features!), labels: Uint8Array.from(split.labels!) };
    const plan = stratifiedValidation(copy.labels, plainTrain.classes.length, s.valFraction!, seed, copy.views);
    const { train, val } = holdOut(copy, plan.rows);
    const initial = buildHead({ classes: plainTrain.classes.length, init: 'random', seed, inFeatures: trunk.featureShape[0]! * 49, hidden: backbone.head.hidden });
    const r = await trainHead({ train, val, test, classes: plainTrain.classes, initial, settings: s });
    accuracies.push(r.test!.accuracy);
    valAccuracies.push(r.history.at(-1)!.valAccuracy!);
    say(`  ${config} seed ${seed}: test ${(100 * r.test!.accuracy).toFixed(2)}%, val ${(100 * r.history.at(-1)!.valAccuracy!).toFixed(2)}% (${train.count} train rows, ${val.count} val rows)`);
  }
  const mean = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
  const sd = Math.sqrt(accuracies.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, accuracies.length - 1));
  // per row, against the plain split's rows in the same run (the views' crops and resizes are extra work)
  const rate = split.count / seconds;
  plainRate ??= rate;
  const extraction = `${seconds.toFixed(0)} s, ${(plainRate / rate).toFixed(2)}× the plain time per row`;
  rows.push(
    `${config.padEnd(10)}  ${split.count.toString().padStart(6)}  ${(100 * mean).toFixed(2).padStart(6)}%  ±${(100 * sd).toFixed(2)}  [${accuracies.map((a) => (100 * a).toFixed(1)).join(', ')}]  ${extraction}`,
  );
}
await trunk.close();
say(`\nconfig        rows  test acc (mean ± sd over head seeds)  per seed  trunk time`);
for (const row of rows) say(row);
