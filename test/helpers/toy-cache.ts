/** A small separable feature cache for train-head tests: 32-channel 1×1 maps (the narrow fixture's trunk width); class k lights up channels 3k…3k+2. */
import { openSplitWriter } from '../../src/cache/writer.js';

export const TOY_CHANNELS = 32;

export async function makeToyCache(path: string, weightsId: string, o: { classes?: string[]; train?: number[]; test?: number[] } = {}): Promise<void> {
  const classes = o.classes ?? ['zero', 'one', 'two'];
  const C = TOY_CHANNELS;
  const labelsOf = (n: number): number[] => Array.from({ length: n }, (_, i) => i % classes.length);
  for (const split of ['train', 'test'] as const) {
    const wanted = o[split] ?? labelsOf(split === 'train' ? 48 : 15);
    const n = wanted.length;
    const features = new Float32Array(n * C);
    const labels = Uint8Array.from(wanted);
    for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) features[i * C + c] = ((i * 7 + c * 13) % 10) / 50 + (Math.floor(c / 3) === labels[i] ? 1 : 0);
    const w = await openSplitWriter({ cachePath: path, split, identity: { weightsId, imageSize: 32, layout: 'map', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], classes, dataName: 'toy', dataSource: '/toy', splitRule: 'fixed' }, count: n, featureShape: [C, 1, 1], force: false });
    await w.append(features);
    await w.finish(labels);
  }
}
