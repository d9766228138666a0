/**
 * Hostile and broken checkpoints, each built byte by byte in build.ts: every one is refused in one
 * line naming the file, the tensor and what was expected, before memory is spent on what it claims.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeadstartError, InputError } from '../../src/errors.js';
import { runInspect } from '../../src/inspect.js';
import { loadCheckpoint } from '../../src/weights/checkpoint.js';
import type { StateDict } from '../../src/weights/types.js';
import { VGG16_BYTES, loadVgg16 } from '../../src/backbones/vgg16/index.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { thrownSync } from '../helpers/errors.js';
import { fixturePath } from '../helpers/fixtures.js';
import { bytesOf, legacyPth, safetensors, safetensorsOf, zipPth, type PickledTensor } from './build.js';
import { tempDir, thrown } from './helpers.js';
import { runChild } from '../helpers/spawn.js';

const dir = tempDir();
const cli = join(import.meta.dirname, '..', '..', 'src', 'cli.ts');
const write = (name: string, bytes: Buffer): string => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};
const inspect = (path: string) => runInspect({ positionals: [path], options: {} }, { stderr: { write: () => true }, json: false, verbose: false, env: {} } as never);

/** ArrayBuffer memory a call leaves allocated (copies it made and still holds, or has not yet freed). */
async function growth(f: () => Promise<unknown>): Promise<number> {
  const before = process.memoryUsage().arrayBuffers;
  await f().catch(() => undefined);
  return process.memoryUsage().arrayBuffers - before;
}

/** Three 16000×16000 tensors that all view one stored float (stride 0): 3 GB claimed by well under 2 KB. */
function expandedBomb(names: readonly string[]): Buffer {
  const tensors = names.map((name): PickledTensor => ({ name, storage: '0', numel: 1, shape: [16000, 16000], stride: [0, 0] }));
  return zipPth(tensors, new Map([['0', new Float32Array([1])]]));
}

let narrowCache: StateDict | undefined;
async function narrow(): Promise<StateDict> {
  narrowCache ??= (await loadCheckpoint(fixturePath('narrow.safetensors'))).stateDict;
  return narrowCache;
}

/** The narrow fixture as pickled tensors, one storage each, with `change` applied to the list. */
async function narrowPickled(change: (tensors: PickledTensor[], storages: Map<string, Float32Array>) => void = () => undefined) {
  const tensors: PickledTensor[] = [];
  const storages = new Map<string, Float32Array>();
  for (const [name, t] of await narrow()) {
    const key = String(storages.size);
    tensors.push({ name, storage: key, numel: t.data.length, shape: t.shape });
    storages.set(key, t.data);
  }
  change(tensors, storages);
  return { tensors, storages };
}

describe('expanded tensors (stride 0)', () => {
  it('refuses a 1 KB zip whose three 16000×16000 tensors view one float, by shape, before reading any', async () => {
    const path = write('bomb.pth', expandedBomb(['features.0.weight', 'features.2.weight', 'features.5.weight']));
    expect(expandedBomb(['a']).length).toBeLessThan(2048);
    const want = `${path}: features.0.weight has shape [16000, 16000] but VGG16's layout needs [64, 3, 3, 3] (1 to 64 output channels)`;
    let err: Error | undefined;
    const grew = await growth(async () => {
      err = await thrown(loadVgg16(path));
    });
    expect(err).toBeInstanceOf(InputError);
    expect(err!.message).toBe(want);
    // Reading them would take 3 GB; what is left is the file and small change.
    expect(grew).toBeLessThan(16 << 20);
  });

  it('refuses to copy out of a file more than the file holds when no layout says what is needed', async () => {
    const path = write('bomb-abc.pth', expandedBomb(['a', 'b', 'c']));
    let err: Error | undefined;
    const grew = await growth(async () => {
      err = await thrown(loadCheckpoint(path));
    });
    expect(err).toBeInstanceOf(InputError);
    expect(err!.message).toBe(
      `${path}: tensor a of shape [16000, 16000] has 256,000,000 values but the file stores 1 of them; copying it out would bring the memory taken to 1,024,000,000 bytes, more than the file's own ${expandedBomb(['a', 'b', 'c']).length} bytes`,
    );
    expect(grew).toBeLessThan(16 << 20);
  });

  it('inspect: a hostile file with VGG16 names is one line on stderr and exit 1 (real CLI)', async () => {
    const path = write('bomb-cli.pth', expandedBomb(['features.0.weight', 'features.2.weight', 'features.5.weight']));
    const run = await runChild(process.execPath, ['--import', 'tsx', cli, 'inspect', path]);
    expect(run.stderr).toBe(`headstart: ${path}: features.0.weight has shape [16000, 16000] but VGG16's layout needs [64, 3, 3, 3] (1 to 64 output channels)\n`);
    expect(run.status).toBe(1);
  });

  it('inspect: another network with expanded tensors gets names and shapes only, no parameter count', async () => {
    const path = write('bomb-inspect.pth', expandedBomb(['a', 'b', 'c']));
    const r = await inspect(path);
    expect(r.text.split('\n')[0]).toBe(`${path}: pth-zip checkpoint, 3 tensors`);
    expect(r.text).not.toContain('parameters');
    expect(r.text).toMatch(/^ {2}a +\[16000, 16000\] expanded from 1 stored value$/m);
    expect((r.data as { parameters?: number }).parameters).toBeUndefined();
  });

  for (const [format, build] of [
    ['zip', zipPth],
    ['legacy', legacyPth],
  ] as const) {
    it(`reads an expanded tensor of the right shape as torch does (${format})`, async () => {
      const { tensors, storages } = await narrowPickled((ts, ss) => {
        // features.0.bias: one stored value broadcast to 8; classifier.0.weight: one row repeated 64 times.
        ss.delete(ts[1]!.storage);
        ts[1] = { name: 'features.0.bias', storage: 'b', numel: 1, shape: [8], stride: [0] };
        ss.set('b', new Float32Array([0.25]));
        const row = ts.findIndex((t) => t.name === 'classifier.0.weight');
        ss.delete(ts[row]!.storage);
        ts[row] = { name: 'classifier.0.weight', storage: 'r', numel: 1568, shape: [64, 1568], stride: [0, 1] };
        ss.set(
          'r',
          Float32Array.from({ length: 1568 }, (_, i) => i / 1568),
        );
      });
      const path = write(`expanded.${format}.pth`, build(tensors, storages));
      const { vgg, checkpoint } = await loadVgg16(path);
      expect(Array.from(vgg.convs[0]!.bias.data)).toEqual(new Array(8).fill(0.25));
      const w = vgg.classifier!.fc0.weight;
      expect(w.shape).toEqual([64, 1568]);
      for (const r of [0, 1, 63]) expect(Array.from(w.data.subarray(r * 1568, (r + 1) * 1568))).toEqual(Array.from(storages.get('r')!));
      // Everything else is read as stored.
      for (const [name, t] of await narrow()) {
        if (name === 'features.0.bias' || name === 'classifier.0.weight') continue;
        expect(bytesOf(checkpoint.stateDict.get(name)!.data).equals(bytesOf(t.data)), name).toBe(true);
      }
    });
  }

  it('never reads a tensor VGG16 does not use, however large it claims to be', async () => {
    const { tensors, storages } = await narrowPickled((ts, ss) => {
      ts.push({ name: 'junk', storage: 'j', numel: 1, shape: [100000, 100000], stride: [0, 0] });
      ss.set('j', new Float32Array([Number.NaN]));
    });
    const path = write('junk.pth', zipPth(tensors, storages));
    const { checkpoint } = await loadVgg16(path);
    expect(checkpoint.stateDict.has('junk')).toBe(false);
    expect(checkpoint.stateDict.size).toBe(32);
  });

  it('bounds copies by what all of VGG16 takes: an expanded classifier.6 of 3,000,000 classes is refused before it is copied', async () => {
    const { tensors, storages } = await narrowPickled((ts, ss) => {
      const at = ts.findIndex((t) => t.name === 'classifier.6.weight');
      ss.delete(ts[at]!.storage);
      ss.delete(ts[at + 1]!.storage);
      ts[at] = { name: 'classifier.6.weight', storage: 'w6', numel: 64, shape: [3_000_000, 64], stride: [0, 1] };
      ts[at + 1] = { name: 'classifier.6.bias', storage: 'b6', numel: 1, shape: [3_000_000], stride: [0] };
      ss.set('w6', new Float32Array(64));
      ss.set('b6', new Float32Array(1));
    });
    const path = write('classes.pth', zipPth(tensors, storages));
    let err: Error | undefined;
    const grew = await growth(async () => {
      err = await thrown(loadVgg16(path));
    });
    expect(err).toBeInstanceOf(InputError);
    expect(err!.message).toBe(
      `${path}: tensor classifier.6.weight of shape [3000000, 64] has 192,000,000 values but the file stores 64 of them; copying it out would bring the memory taken to 768,000,000 bytes, more than the ${VGG16_BYTES.toLocaleString('en-US')} bytes all of VGG16's parameters take`,
    );
    expect(grew).toBeLessThan(16 << 20);
  });
});

describe('shapes against the layout', () => {
  it('names a conv wider than VGG16 allows, with the shape it needs', async () => {
    const t = new Map(await narrow());
    t.set('features.0.weight', { shape: [65, 3, 3, 3], data: new Float32Array(65 * 27) });
    const path = write('wide.safetensors', safetensorsOf(t));
    const err = await thrown(loadVgg16(path));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${path}: features.0.weight has shape [65, 3, 3, 3] but VGG16's layout needs [64, 3, 3, 3] (1 to 64 output channels)`);
  });

  it('names a classifier wider than VGG16 allows', async () => {
    const t = new Map(await narrow());
    t.set('classifier.0.weight', { shape: [5000, 1568], data: new Float32Array(5000 * 1568) });
    const path = write('wide-fc.safetensors', safetensorsOf(t));
    const err = await thrown(loadVgg16(path));
    expect(err.message).toBe(`${path}: classifier.0.weight has shape [5000, 1568] but VGG16's layout needs [4096, 1568] (1 to 4096 outputs)`);
  });

  it('refuses a negative size in a .pth in one line', async () => {
    const path = write('negative.pth', zipPth([{ name: 'features.0.weight', storage: '0', numel: 4, shape: [-1], stride: [1] }], new Map([['0', new Float32Array(4)]])));
    for (const load of [loadCheckpoint, loadVgg16]) {
      const err = await thrown(load(path));
      expect(err).toBeInstanceOf(InputError);
      expect(err.message).toBe(`${path}: tensor features.0.weight has shape [-1]; expected sizes that are whole numbers ≥ 0`);
    }
  });

  it('refuses a [100000, 100000] .pth tensor on one float by shape (VGG16) or by the copy bound (any checkpoint)', async () => {
    const path = write('huge.pth', zipPth([{ name: 'features.0.weight', storage: '0', numel: 1, shape: [100000, 100000], stride: [0, 0] }], new Map([['0', new Float32Array(1)]])));
    const vgg = await thrown(loadVgg16(path));
    expect(vgg.message).toBe(`${path}: features.0.weight has shape [100000, 100000] but VGG16's layout needs [64, 3, 3, 3] (1 to 64 output channels)`);
    const any = await thrown(loadCheckpoint(path));
    expect(any).toBeInstanceOf(InputError);
    expect(any.message).toMatch(
      new RegExp(
        `^${path.replace(/[.]/g, '\\.')}: tensor features\\.0\\.weight of shape \\[100000, 100000\\] has 10,000,000,000 values but the file stores 1 of them; copying it out would bring the memory taken to 40,000,000,000 bytes, more than the file's own \\d+ bytes$`,
      ),
    );
  });

  it('refuses a tensor that runs past its storage, and strides that do not match the sizes', async () => {
    const past = write('past.pth', zipPth([{ name: 'w', storage: '0', numel: 4, shape: [2, 3] }], new Map([['0', new Float32Array(4)]])));
    expect((await thrown(loadCheckpoint(past))).message).toBe(`${past}: tensor w of shape [2, 3] runs past its storage of 4 elements`);
    const strides = write('strides.pth', zipPth([{ name: 'w', storage: '0', numel: 4, shape: [2, 2], stride: [1] }], new Map([['0', new Float32Array(4)]])));
    expect((await thrown(loadCheckpoint(strides))).message).toBe(`${strides}: tensor w has 2 sizes but 1 strides`);
  });
});

describe('safetensors offsets and shapes', () => {
  const floats = (n: number): Buffer => Buffer.alloc(4 * n);
  const errorOf = (header: Record<string, unknown>, data: Buffer): Error => thrownSync(() => readSafetensors(safetensors(header, data), 'h.safetensors'));

  it('refuses two tensors on the same bytes', () => {
    const err = errorOf({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, floats(3));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('h.safetensors: tensors a and b overlap (data_offsets [0, 8] and [4, 12]); each tensor must have bytes of its own');
  });

  it('refuses a tensor inside another, listed first', () => {
    const err = errorOf({ inner: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, outer: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, floats(4));
    expect(err.message).toBe('h.safetensors: tensors outer and inner overlap (data_offsets [0, 16] and [4, 8]); each tensor must have bytes of its own');
  });

  it('refuses offsets past the end of the file as truncation', () => {
    const err = errorOf({ a: { dtype: 'F32', shape: [1000], data_offsets: [0, 4000] } }, floats(2));
    expect(err.message).toMatch(/^h\.safetensors is truncated or incomplete \(a ends at byte \d+ but the file has \d+ bytes\)/);
  });

  it('refuses offsets that end before they begin', () => {
    const err = errorOf({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, floats(2));
    expect(err.message).toBe('h.safetensors: tensor a has data_offsets [8, 0] that end before they begin');
  });

  it('refuses a span that does not match dtype × shape, for any dtype', () => {
    expect(errorOf({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, floats(2)).message).toBe('h.safetensors: tensor a of shape [3] needs 6 bytes as F16 but its data_offsets span 8');
  });

  it('refuses shapes [100000, 100000], [-1], fractional and astronomically large ones in one line', () => {
    const at = (shape: unknown[]) => errorOf({ a: { dtype: 'F32', shape, data_offsets: [0, 8] } }, floats(2)).message;
    expect(at([1e5, 1e5])).toBe('h.safetensors: tensor a of shape [100000, 100000] needs 40000000000 bytes as F32 but its data_offsets span 8');
    expect(at([-1])).toBe('h.safetensors: tensor a has shape [-1]; expected sizes that are whole numbers ≥ 0');
    expect(at([1.5])).toBe('h.safetensors: tensor a has shape [1.5]; expected sizes that are whole numbers ≥ 0');
    expect(at(['2'])).toBe('h.safetensors: tensor a has shape [string]; expected sizes that are whole numbers ≥ 0');
    expect(at([2 ** 30, 2 ** 30, 2 ** 30])).toBe('h.safetensors: tensor a has shape [1073741824, 1073741824, 1073741824] of 1.24e+27 values, more than any checkpoint holds; the file is damaged');
  });

  it('names a tensor whose name holds a line break on one line', () => {
    const err = errorOf({ 'a\nb': { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, c: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, floats(2));
    expect(err.message).toBe('h.safetensors: tensors "a\\nb" and c overlap (data_offsets [0, 8] and [4, 8]); each tensor must have bytes of its own');
    expect(err.message.split('\n')).toHaveLength(1);
  });
});

describe('NaN and Inf in weights', () => {
  it('refuses NaN at load, naming the file, the tensor and the first bad index', async () => {
    const t = new Map(await narrow());
    const w = Float32Array.from(t.get('features.7.weight')!.data);
    w[100] = Number.NaN;
    w[200] = Number.NaN;
    t.set('features.7.weight', { shape: t.get('features.7.weight')!.shape, data: w });
    const path = write('nan.safetensors', safetensorsOf(t));
    const err = await thrown(loadVgg16(path));
    expect(err).toBeInstanceOf(InputError);
    // [16, 16, 3, 3]: flat 100 is [0, 11, 0, 1].
    expect(err.message).toBe(
      `${path}: tensor features.7.weight holds NaN at [0, 11, 0, 1] (value 101 of 2,304); the checkpoint is damaged or was saved from a diverged model, and every feature computed from it would be NaN`,
    );
    // inspect trusts it no more (the CLI prints this one line and exits 1, as for the file above).
    const inspected = await thrown(inspect(path));
    expect(inspected).toBeInstanceOf(InputError);
    expect(inspected.message).toBe(err.message);
  });

  for (const [label, value] of [
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
  ] as const) {
    it(`refuses ${label} in a legacy .pth classifier`, async () => {
      const { tensors, storages } = await narrowPickled((ts, ss) => {
        const key = ts.find((x) => x.name === 'classifier.3.bias')!.storage;
        const b = Float32Array.from(ss.get(key)!);
        b[63] = value;
        ss.set(key, b);
      });
      const path = write(`inf${value}.pth`, legacyPth(tensors, storages));
      const err = await thrown(loadVgg16(path));
      expect(err).toBeInstanceOf(HeadstartError);
      expect(err.message).toBe(
        `${path}: tensor classifier.3.bias holds ${label} at [63] (value 64 of 64); the checkpoint is damaged or was saved from a diverged model, and every feature computed from it would be NaN`,
      );
    });
  }
});
