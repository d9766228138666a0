/**
 * Times loadVgg16 on a full-size checkpoint: `npx tsx bench/weights.ts [file ...]`.
 * Without a file it uses /tmp/vgg16-random.pth; make one (legacy format, like torchvision's download) with
 *   /usr/bin/python3 -c "import torch, torchvision; torch.save(torchvision.models.vgg16().state_dict(),
 *     '/tmp/vgg16-random.pth', _use_new_zipfile_serialization=False)"
 * Also times the classifier export's save and load (into a temp dir).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadClassifier, saveClassifier } from '../src/weights/classifier.js';
import { loadVgg16 } from '../src/backbones/vgg16/index.js';

const RUNS = 3;
const files = process.argv.slice(2);
if (files.length === 0) files.push('/tmp/vgg16-random.pth');

const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const file of files) {
  if (!existsSync(file)) {
    console.error(`${file} does not exist; see the comment at the top of bench/weights.ts to make one`);
    process.exitCode = 1;
    continue;
  }
  const mb = statSync(file).size / 1e6;
  const times: number[] = [];
  let last: Awaited<ReturnType<typeof loadVgg16>> | undefined;
  for (let i = 0; i < RUNS; i++) {
    last = undefined; // let the previous run's buffer go
    const t0 = process.hrtime.bigint();
    last = await loadVgg16(file);
    times.push(seconds(t0));
  }
  const { checkpoint, vgg } = last!;
  const buffers = new Set([...checkpoint.stateDict.values()].map((t) => t.data.buffer));
  const t = median(times);
  console.log(`${file}: ${checkpoint.format}, ${mb.toFixed(1)} MB, ${checkpoint.stateDict.size} tensors in ${buffers.size} buffer(s)`);
  console.log(`  loadVgg16 (read + parse + sha256): median ${t.toFixed(3)} s of ${RUNS} (${times.map((x) => x.toFixed(3)).join(', ')}), ${(mb / t).toFixed(0)} MB/s`);

  const bytes = readFileSync(file);
  const h0 = process.hrtime.bigint();
  createHash('sha256').update(bytes).digest('hex');
  console.log(`  of which sha256 alone: ${seconds(h0).toFixed(3)} s`);

  if (vgg.classifier) {
    const dir = mkdtempSync(join(tmpdir(), 'headstart-bench-'));
    try {
      const s0 = process.hrtime.bigint();
      const bin = await saveClassifier(vgg, checkpoint.sha256, dir);
      const saveS = seconds(s0);
      const l0 = process.hrtime.bigint();
      await loadClassifier(bin);
      const loadS = seconds(l0);
      const cmb = statSync(bin).size / 1e6;
      console.log(`  classifier export ${cmb.toFixed(1)} MB: save ${saveS.toFixed(3)} s, load ${loadS.toFixed(3)} s (${(cmb / loadS).toFixed(0)} MB/s)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
