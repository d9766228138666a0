/**
 * What `extract --augment` costs: the train split of the bundled digits through a seeded random
 * VGG16 (no pretrained file needed), plain and with each augmentation, into fresh caches; rows,
 * cache bytes and time, the time printed as a ratio to the plain run of the same invocation (a
 * busy machine slows them alike). The views column is one byte a row beside the row's features.
 *
 * `npx tsx bench/augment-extract.ts [--image-size 32] [--views 4] [--augment none,flip,crop,flip+crop]`
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from '../src/extract/run.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const imageSize = Number(flag('image-size', '32'));
const K = Number(flag('views', '4'));
const configs = flag('augment', 'none,flip,crop,flip+crop').split(',');
const dir = mkdtempSync(join(tmpdir(), 'headstart-bench-augment-'));
const say = (line: string): void => console.log(line);

say(`extract --split train of the digits, random VGG16, image size ${imageSize}; load average ${loadavg()[0]!.toFixed(1)} at the start`);
let plainSeconds: number | undefined;
try {
  for (const config of configs) {
    const augment = config === 'none' ? undefined : config.replace('+', ',');
    const views = augment === undefined ? undefined : augment.includes('crop') ? K : 1;
    const cache = join(dir, `${config}.h5`);
    const started = performance.now();
    const r = await extract({ data: 'digits', randomWeights: true, imageSize, split: 'train', cache, device: 'cpu', ...(augment === undefined ? {} : { augment, views }) });
    const seconds = (performance.now() - started) / 1000;
    plainSeconds ??= seconds;
    const s = r.splits[0]!;
    say(
      `${config.padEnd(10)} ${String(s.count).padStart(6)} rows (${s.images ?? s.count} images × ${s.viewsPerImage ?? 1})  cache ${(statSync(cache).size / 1e6).toFixed(2)} MB  time ×${(seconds / plainSeconds).toFixed(2)} of plain  (${(statSync(cache).size / s.count).toFixed(0)} bytes a row)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
