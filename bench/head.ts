/**
 * One epoch of the folded head over 50,000 synthetic 512×1×1 features (CIFAR-10 at 32×32) at batch
 * 256 (196 steps): 512→4096→4096→10, SGD momentum 0.9, dropout 0.5, on the best CPU backend.
 * `npx tsx bench/head.ts [--steps N] [--optimizer sgd|adam] [--no-fold] [--backend NAME]`: with
 * --steps, only N steps run and the epoch is extrapolated. Compare with bench/head_torch.py.
 * The PyTorch reference: `[--torch-steps N] [--torch-device cpu|cuda] [--no-torch]`, through
 * $TORCH_PYTHON (default /usr/bin/python3); on cuda it also times TF32 matmuls.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { selectBackend, type BackendRequest } from '../src/head/backend.js';
import { buildHead } from '../src/head/model.js';
import { createRng } from '../src/head/random.js';
import { trainHead } from '../src/head/train.js';
import type { FeatureSplit } from '../src/head/types.js';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const N = 50_000;
const C = 512;
const K = 10;
const BATCH = 256;
const stepsPerEpoch = Math.ceil(N / BATCH);
const steps = Math.min(stepsPerEpoch, Number(flag('steps') ?? stepsPerEpoch));
const optimizer = (flag('optimizer') ?? 'sgd') as 'sgd' | 'adam';
const fold = !argv.includes('--no-fold');
const torchDevice = flag('torch-device') ?? 'cpu';
const python = process.env['TORCH_PYTHON'] ?? '/usr/bin/python3';

function synthetic(n: number, seed: number): FeatureSplit {
  const rng = createRng(seed);
  const features = new Float32Array(n * C);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rng.int(K);
    for (let c = 0; c < C; c++) features[i * C + c] = Math.max(0, rng.uniform(-0.5, 1) + (c % K === labels[i] ? 0.5 : 0));
  }
  return { count: n, featureShape: [C, 1, 1], layout: 'map', features, labels };
}

const backend = await selectBackend((flag('backend') ?? 'auto') as BackendRequest, { onNote: (l) => console.error(l) });
const rows = steps * BATCH;
const train = synthetic(Math.min(N, rows), 1);
const test = synthetic(1000, 2);
const initial = buildHead({ classes: K, init: 'random', seed: 0, inFeatures: C * 49, hidden: 4096 });
console.log(
  `backend: ${backend.detail}; load average before: ${loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')}`,
);
const times: number[] = [];
let last = performance.now();
const start = last;
const result = await trainHead(
  {
    train,
    test,
    classes: Array.from({ length: K }, (_, i) => `c${i}`),
    initial,
    settings: { optimizer, lr: optimizer === 'sgd' ? 0.001 : 1e-4, weightDecay: 0, momentum: 0.9, batchSize: BATCH, epochs: 1, dropout: 0.5, patience: 0, fold, init: 'random', seed: 0 },
  },
  {
    onBatchEnd: ({ batch, batches, loss }) => {
      const now = performance.now();
      times.push(now - last);
      last = now;
      if (batch % 20 === 0 || batch === batches) console.error(`step ${batch}/${batches} ${(now - start) / 1000}s loss ${loss.toFixed(4)}`);
    },
  },
);
const total = (performance.now() - start) / 1000;
const sorted = [...times].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)]!;
const steady = times.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, times.length - 1);
console.log(
  `${fold ? 'folded' : 'unfolded'} ${optimizer}: ${times.length} steps of batch ${BATCH}; first step ${times[0]!.toFixed(0)} ms, median ${median.toFixed(0)} ms, mean after the first ${steady.toFixed(0)} ms`,
);
const epochSeconds = steps < stepsPerEpoch ? (times[0]! + steady * (stepsPerEpoch - 1)) / 1000 : total;
const goal = fold ? 'goal ≤ 60 s' : 'goal: no slower than PyTorch';
console.log(
  `run total ${total.toFixed(1)} s (incl. test pass and unfolding); epoch of ${stepsPerEpoch} steps ${steps < stepsPerEpoch ? 'extrapolated' : 'measured'}: ${epochSeconds.toFixed(1)} s (${goal})`,
);
console.log(
  `final train loss ${result.history[0]!.trainLoss.toFixed(4)}; load average after: ${loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')}`,
);

// The reference in the same run: PyTorch's unfolded head (what torchvision trains at 32×32), when
// Debian's python3-torch is installed. It times a few steps and extrapolates to the epoch.
if (!argv.includes('--no-torch') && existsSync(python)) {
  const py = spawnSync(python, [new URL('./head_torch.py', import.meta.url).pathname, flag('torch-steps') ?? '5', '--device', torchDevice], { encoding: 'utf8', timeout: 900_000 });
  const match = /EPOCH_SECONDS ([\d.]+)/.exec(py.stdout ?? '');
  if (match) {
    const torchEpoch = Number(match[1]);
    console.log(
      (py.stdout ?? '')
        .split('\n')
        .filter((l) => l && !l.startsWith('EPOCH_SECONDS'))
        .join('\n'),
    );
    const kind = fold ? 'folded' : 'unfolded';
    if (backend.name === 'cpu' && torchDevice === 'cpu') {
      console.log(`ratio: headstart ${kind} epoch ${epochSeconds.toFixed(1)} s vs PyTorch unfolded ${torchEpoch.toFixed(1)} s: ${(torchEpoch / epochSeconds).toFixed(2)}x faster`);
    } else {
      // Off the CPU an epoch can take well under a second; name both devices, since either may be a GPU.
      const s = (v: number) => (v >= 10 ? v.toFixed(1) : v.toFixed(2));
      const ours = `headstart ${kind} epoch on ${backend.name} ${s(epochSeconds)} s`;
      console.log(`ratio: ${ours} vs PyTorch unfolded on ${torchDevice} (float32) ${s(torchEpoch)} s: ${(torchEpoch / epochSeconds).toFixed(2)}x faster`);
      const tf32 = /EPOCH_SECONDS_TF32 ([\d.]+)/.exec(py.stdout ?? '');
      if (tf32) console.log(`ratio: ${ours} vs PyTorch unfolded on ${torchDevice} (TF32) ${s(Number(tf32[1]))} s: ${(Number(tf32[1]) / epochSeconds).toFixed(2)}x faster`);
    }
  } else {
    console.log(`PyTorch reference${torchDevice === 'cpu' ? '' : ` (${torchDevice})`} skipped: ${(py.stderr ?? '').trim().split('\n').pop() || (py.error?.message ?? `exit status ${py.status}`)}`);
  }
}
