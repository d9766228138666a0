import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, MismatchError } from '../../src/errors.js';
import { findNewestHead, loadHead, saveHead } from '../../src/head/head-io.js';
import { checkpointDir, readCheckpoint, writeCheckpoint } from '../../src/head/checkpoint.js';
import { buildHead, headProbabilities, linearInit } from '../../src/head/model.js';
import { createRng } from '../../src/head/random.js';
import type { HeadKind, HeadMeta, HeadWeights } from '../../src/head/types.js';
import { relativeError } from '../helpers/fixtures.js';
import { rejection, thrownSync as thrownBy } from '../helpers/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'headstart-io-'));
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function weights(): HeadWeights {
  const rng = createRng(4);
  return { fc0: linearInit(5 * 49, 12, rng), fc3: linearInit(12, 12, rng), fc6: linearInit(12, 3, rng) };
}

function meta(classes = ['cat', 'dog', 'eel']): HeadMeta {
  return {
    format: 'headstart-head',
    formatVersion: 1,
    toolVersion: '0.1.0',
    createdAt: '2024-01-01T00:00:00.000Z',
    classes,
    inFeatures: 245,
    hidden: 12,
    input: { layout: 'map', featureShape: [5, 1, 1], transform: 'avgpool' },
    cache: { path: 'cache/x.h5', weightsId: 'abc', imageSize: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    settings: { optimizer: 'sgd', lr: 0.01, weightDecay: 0, momentum: 0.9, batchSize: 4, epochs: 1, dropout: 0.5, patience: 0, fold: true, init: 'random', seed: 0 },
    training: { epochsRun: 1, bestEpoch: 1, stoppedEarly: false, folded: true },
  };
}

function save(name: string, m = meta()): string {
  const dir = join(tmp, name);
  saveHead(dir, weights(), m, 0.5);
  return dir;
}

describe('saveHead / loadHead', () => {
  it('round-trips the weights in PyTorch layout and the metadata', async () => {
    const dir = save('roundtrip');
    const head = await loadHead(dir);
    const w = weights();
    for (const l of ['fc0', 'fc3', 'fc6'] as const) {
      expect(Array.from(head.layers[l]!.weight)).toEqual(Array.from(w[l]!.weight));
      expect(Array.from(head.layers[l]!.bias)).toEqual(Array.from(w[l]!.bias));
      expect([head.layers[l]!.outFeatures, head.layers[l]!.inFeatures]).toEqual([w[l]!.outFeatures, w[l]!.inFeatures]);
    }
    expect(head.meta).toEqual(meta());
  });

  it('writes a model.json that tf.loadLayersModel reads, giving the same probabilities', async () => {
    const dir = save('layers');
    const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
    const bin = readFileSync(join(dir, 'weights.bin'));
    const handler: tf.io.IOHandler = {
      load: async () => ({
        modelTopology: modelJson.modelTopology,
        weightSpecs: modelJson.weightsManifest[0]!.weights,
        weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
      }),
    };
    const model = await tfl.loadLayersModel(handler);
    expect(model.layers.map((l) => l.getClassName())).toEqual(['Dense', 'Dropout', 'Dense', 'Dropout', 'Dense']);
    const rng = createRng(6);
    const n = 4;
    const map = Float32Array.from({ length: n * 5 }, () => rng.uniform(0, 2));
    const pooled = new Float32Array(n * 245);
    for (let i = 0; i < n * 5; i++) pooled.fill(map[i]!, i * 49, i * 49 + 49);
    const fromLayers = (model.predict(tf.tensor2d(pooled, [n, 245])) as tf.Tensor).dataSync();
    const head = await loadHead(dir);
    const fromHead = await headProbabilities(head, map, n, [5, 1, 1]);
    expect(relativeError(fromLayers, fromHead)).toBeLessThanOrEqual(1e-5);
    expect(fromHead[0]! + fromHead[1]! + fromHead[2]!).toBeCloseTo(1, 5);
  });

  it('refuses a missing folder', async () => {
    await expect(loadHead(join(tmp, 'nope'))).rejects.toThrow(InputError);
    await expect(loadHead(join(tmp, 'nope'))).rejects.toThrow(`Head folder ${join(tmp, 'nope')} not found; train one with: headstart train-head`);
  });

  it('refuses a folder without weights.bin', async () => {
    const dir = save('noweights');
    rmSync(join(dir, 'weights.bin'));
    await expect(loadHead(dir)).rejects.toThrow(`Head file ${join(dir, 'weights.bin')} not found; expected the weights named by ${join(dir, 'model.json')}`);
  });

  it('refuses a truncated weights.bin', async () => {
    const dir = save('truncated');
    truncateSync(join(dir, 'weights.bin'), 100);
    await expect(loadHead(dir)).rejects.toThrow(InputError);
    await expect(loadHead(dir)).rejects.toThrow(/^Expected 12588 bytes in .*weights\.bin \(from model\.json\) but received 100$/);
  });

  it('refuses headstart.json that is not JSON, or not a head', async () => {
    const dir = save('badjson');
    writeFileSync(join(dir, 'headstart.json'), '{oops');
    await expect(loadHead(dir)).rejects.toThrow(`Expected JSON in head file ${join(dir, 'headstart.json')} but it does not parse`);
    writeFileSync(join(dir, 'headstart.json'), '{"format": "other"}');
    await expect(loadHead(dir)).rejects.toThrow(`Expected "format": "headstart-head" in ${join(dir, 'headstart.json')} but received "other"`);
  });

  it('refuses a model.json whose weightsManifest lacks paths, weights or a shape, naming the file', async () => {
    const dir = save('manifest');
    const modelPath = join(dir, 'model.json');
    const good = readFileSync(modelPath, 'utf8');
    const edit = (change: (m: { weightsManifest: Record<string, unknown>[] }) => void): void => {
      const m = JSON.parse(good) as { weightsManifest: Record<string, unknown>[] };
      change(m);
      writeFileSync(modelPath, JSON.stringify(m));
    };
    const failure = async (): Promise<Error> => {
      const err = await loadHead(dir).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(InputError);
      return err!;
    };
    edit((m) => delete m.weightsManifest[0]!.paths);
    expect((await failure()).message).toBe(`Expected one weightsManifest group with one file in ${modelPath}`);
    edit((m) => delete m.weightsManifest[0]!.weights);
    expect((await failure()).message).toBe(`Expected a "weights" list in the weightsManifest of ${modelPath} but received nothing`);
    edit((m) => delete (m.weightsManifest[0]!.weights as Record<string, unknown>[])[2]!.shape);
    expect((await failure()).message).toBe(`Expected a "shape" (list of sizes) for weight fc3/kernel in ${modelPath} but received nothing`);
    edit((m) => ((m.weightsManifest[0]!.weights as Record<string, unknown>[])[0]!.shape = [245, 'x']));
    expect((await failure()).message).toBe(`Expected a "shape" (list of sizes) for weight fc0/kernel in ${modelPath} but received [245,"x"]`);
    edit((m) => ((m.weightsManifest[0]!.weights as unknown[])[1] = null));
    expect((await failure()).message).toBe(`Expected weightsManifest entries with a "name" in ${modelPath} but received null`);
    writeFileSync(modelPath, 'null');
    expect((await failure()).message).toBe(`Expected one weightsManifest group with one file in ${modelPath}`);
  });

  it('refuses a headstart.json that is JSON null with the not-a-head line', async () => {
    const dir = save('nullmeta');
    writeFileSync(join(dir, 'headstart.json'), 'null');
    await expect(loadHead(dir)).rejects.toThrow(InputError);
    await expect(loadHead(dir)).rejects.toThrow(`Expected "format": "headstart-head" in ${join(dir, 'headstart.json')} but received null`);
  });

  it('refuses a head whose class names do not match its outputs', async () => {
    const dir = save('classes', meta(['a', 'b']));
    await expect(loadHead(dir)).rejects.toThrow(MismatchError);
    await expect(loadHead(dir)).rejects.toThrow(`Head ${dir} has 3 outputs but 2 class names in headstart.json`);
  });
});

describe('loadHead refuses hostile or damaged files in one line', () => {
  it('a manifest claiming a huge shape, before reading or allocating anything', async () => {
    const dir = save('huge');
    const modelPath = join(dir, 'model.json');
    const m = JSON.parse(readFileSync(modelPath, 'utf8')) as { weightsManifest: { weights: { shape: number[] }[] }[] };
    m.weightsManifest[0]!.weights[0]!.shape = [100000, 100000];
    writeFileSync(modelPath, JSON.stringify(m));
    const before = process.memoryUsage().arrayBuffers;
    const err = await rejection(loadHead(dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected ${4 * (1e10 + 12 + 144 + 12 + 36 + 3)} bytes in ${join(dir, 'weights.bin')} (from model.json) but received 12588`);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
    m.weightsManifest[0]!.weights[0]!.shape = [2 ** 40, 2 ** 40];
    writeFileSync(modelPath, JSON.stringify(m));
    expect((await rejection(loadHead(dir))).message).toBe(`Expected a "shape" (list of sizes) for weight fc0/kernel in ${modelPath} but received [1099511627776,1099511627776]`);
  });

  it('a weights path that leaves the head folder', async () => {
    const dir = save('escape');
    const modelPath = join(dir, 'model.json');
    const m = JSON.parse(readFileSync(modelPath, 'utf8')) as { weightsManifest: { paths: string[] }[] };
    m.weightsManifest[0]!.paths = ['../../../dev/zero'];
    writeFileSync(modelPath, JSON.stringify(m));
    const err = await rejection(loadHead(dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected a file name in the head folder for the weightsManifest path of ${modelPath} but received "../../../dev/zero"`);
  });

  it('a folder where headstart.json or weights.bin should be', async () => {
    const dir = save('folders');
    rmSync(join(dir, 'weights.bin'));
    mkdirSync(join(dir, 'weights.bin'));
    expect((await rejection(loadHead(dir))).message).toBe(`Expected the head weights in head file ${join(dir, 'weights.bin')} but it is a folder`);
    rmSync(join(dir, 'headstart.json'));
    mkdirSync(join(dir, 'headstart.json'));
    const err = await rejection(loadHead(dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected the head metadata in head file ${join(dir, 'headstart.json')} but it is a folder`);
  });

  it('a NaN weight, naming the weight', async () => {
    const dir = save('nan');
    const bin = readFileSync(join(dir, 'weights.bin'));
    bin.writeFloatLE(Number.NaN, 4 * (245 * 12 + 3));
    writeFileSync(join(dir, 'weights.bin'), bin);
    const err = await rejection(loadHead(dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected finite numbers in weight fc0/bias of ${join(dir, 'weights.bin')} but value 3 is NaN; the head is damaged, train it again`);
  });

  it('headstart.json fields that predict relies on', async () => {
    const file = (dir: string): string => join(dir, 'headstart.json');
    const cases: [string, (m: Record<string, unknown>) => void, string][] = [
      [
        'layout',
        (m) => ((m.input as Record<string, unknown>).layout = 'grid'),
        `Expected {"layout": "map" or "pooled", ...} for "input" in FILE but received {"layout":"grid","featureShape":[5,1,1],"transform":"avgpool"}`,
      ],
      ['shape', (m) => ((m.input as Record<string, unknown>).featureShape = [5, -1, 1]), `Expected 3 positive sizes for "input.featureShape" in FILE but received [5,-1,1]`],
      ['classes', (m) => (m.classes = ['a', 2, 'c']), `Expected a list of at least two class names for "classes" in FILE but received ["a",2,"c"]`],
      ['size', (m) => ((m.cache as Record<string, unknown>).imageSize = 2.5), `Expected a positive integer for "cache.imageSize" in FILE but received 2.5`],
      ['std', (m) => ((m.cache as Record<string, unknown>).std = [0.2, 0, 0.2]), `Expected three numbers for "cache.std" in FILE but received [0.2,0,0.2]`],
      ['settings', (m) => delete m.settings, `Expected an object for "settings" in FILE but received nothing`],
    ];
    for (const [name, change, message] of cases) {
      const dir = save(`meta-${name}`);
      const m = JSON.parse(readFileSync(file(dir), 'utf8')) as Record<string, unknown>;
      change(m);
      writeFileSync(file(dir), JSON.stringify(m));
      const err = await rejection(loadHead(dir));
      expect(err, name).toBeInstanceOf(InputError);
      expect(err.message, name).toBe(message.replace('FILE', file(dir)));
    }
  });

  it("a feature shape that does not give the first layer's inputs", async () => {
    const m = meta();
    m.input.featureShape = [6, 1, 1];
    const dir = save('width', m);
    const err = await rejection(loadHead(dir));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toBe(`Head ${dir} takes 245 inputs (${join(dir, 'model.json')}) but rows of shape [6, 1, 1] (${join(dir, 'headstart.json')}) give 294`);
  });
});

describe('heads of each kind on disk', () => {
  /** A head of `kind` on [5, 1, 1] rows taken as they are (5 inputs, a globally pooled trunk's). */
  function saveKind(name: string, kind: HeadKind, over: (m: HeadMeta) => void = () => {}): { dir: string; w: HeadWeights } {
    const w = buildHead({ kind, classes: 3, init: 'random', seed: 9, inFeatures: 5, hidden: 7 });
    const m = { ...meta(), kind, inFeatures: 5, hidden: kind === 'linear' ? 0 : 7 };
    m.input = { ...m.input, classifier: 'flatten' };
    over(m);
    const dir = join(tmp, name);
    saveHead(dir, w, m, 0.5);
    return { dir, w };
  }

  async function layersModel(dir: string): Promise<tfl.LayersModel> {
    const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
    const bin = readFileSync(join(dir, 'weights.bin'));
    const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
    return tfl.loadLayersModel({ load: async () => ({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0]!.weights, weightData }) });
  }

  for (const [kind, layers, bytes] of [
    ['linear', ['Dense'], 4 * (5 * 3 + 3)],
    ['mlp', ['Dense', 'Dropout', 'Dense'], 4 * (5 * 7 + 7 + 7 * 3 + 3)],
  ] as const) {
    it(`${kind}: round-trips its layers at 5 inputs (${bytes} bytes of weights), and tf.loadLayersModel gives the same probabilities`, async () => {
      const { dir, w } = saveKind(`kind-${kind}`, kind);
      expect(readFileSync(join(dir, 'weights.bin')).byteLength).toBe(bytes);
      const head = await loadHead(dir);
      expect(head.meta.kind).toBe(kind);
      for (const name of ['fc0', 'fc3', 'fc6'] as const) {
        expect(head.layers[name] === undefined, name).toBe(w[name] === undefined);
        if (w[name]) expect(Array.from(head.layers[name]!.weight), name).toEqual(Array.from(w[name].weight));
      }
      const model = await layersModel(dir);
      expect(model.layers.map((l) => l.getClassName())).toEqual([...layers]);
      const rng = createRng(6);
      const rows = Float32Array.from({ length: 4 * 5 }, () => rng.uniform(0, 2));
      const fromLayers = (model.predict(tf.tensor2d(rows, [4, 5])) as tf.Tensor).dataSync();
      expect(relativeError(fromLayers, await headProbabilities(head, rows, 4, [5, 1, 1]))).toBeLessThanOrEqual(1e-5);
    });
  }

  it('a head written before kinds (no "kind", no "input.classifier") loads as a classifier of C*49 inputs', async () => {
    const dir = save('old-format');
    const m = JSON.parse(readFileSync(join(dir, 'headstart.json'), 'utf8')) as Record<string, unknown>;
    expect(m.kind).toBeUndefined();
    expect((m.input as Record<string, unknown>).classifier).toBeUndefined();
    const head = await loadHead(dir);
    expect([head.layers.fc0.inFeatures, head.layers.fc3?.outFeatures, head.layers.fc6?.outFeatures]).toEqual([245, 12, 3]);
  });

  it('refuses an unknown kind, and layers that contradict the kind, in one line each', async () => {
    const file = (dir: string, name: string): string => join(dir, name);
    const unknown = saveKind('kind-unknown', 'mlp', (m) => ((m as unknown as Record<string, unknown>).kind = 'transformer'));
    let err = await rejection(loadHead(unknown.dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected one of classifier, mlp, linear for "kind" in ${file(unknown.dir, 'headstart.json')} but received "transformer"`);

    // An mlp's files under a headstart.json that says linear: fc3 is not a linear head's.
    const extra = saveKind('kind-extra', 'mlp', (m) => (m.kind = 'linear'));
    err = await rejection(loadHead(extra.dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected only the layers of a linear head (fc0) in ${file(extra.dir, 'model.json')} but it has fc3; "kind" in ${file(extra.dir, 'headstart.json')} says linear`);

    // A linear head's files under one that says mlp: fc3 is missing.
    const short = saveKind('kind-short', 'linear', (m) => (m.kind = 'mlp'));
    err = await rejection(loadHead(short.dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected Dense layer fc3 (kernel and bias) in ${file(short.dir, 'model.json')} for an mlp head`);

    // An mlp's files with no kind at all read as a classifier, which needs fc6.
    const old = saveKind('kind-absent', 'mlp', (m) => delete m.kind);
    err = await rejection(loadHead(old.dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected Dense layer fc6 (kernel and bias) in ${file(old.dir, 'model.json')}`);

    const mode = saveKind('kind-mode', 'linear', (m) => ((m.input as Record<string, unknown>).classifier = 'gap'));
    err = await rejection(loadHead(mode.dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected "pool7" or "flatten" for "input.classifier" in ${file(mode.dir, 'headstart.json')} but received "gap"`);

    // 5 inputs, but headstart.json says the rows are pooled to 7×7 (245 inputs).
    const pool = saveKind('kind-pool7', 'linear', (m) => (m.input.classifier = 'pool7'));
    err = await rejection(loadHead(pool.dir));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toBe(`Head ${pool.dir} takes 5 inputs (${file(pool.dir, 'model.json')}) but rows of shape [5, 1, 1] (${file(pool.dir, 'headstart.json')}) give 245`);
  });

  it('readCheckpoint takes the parameters of a linear or mlp head, and refuses an mlp whose layers do not chain', () => {
    const t = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    const linear = join(tmp, 'ck-linear');
    writeCheckpoint(linear, 1, {}, trainerState(1), { 'param.w0': t([3, 5]), 'param.b0': t([3]) });
    expect([...readCheckpoint(linear)!.tensors.keys()]).toEqual(['param.w0', 'param.b0']);
    const bad = join(tmp, 'ck-mlp-bad');
    writeCheckpoint(bad, 1, {}, trainerState(1), { 'param.w0': t([7, 5]), 'param.b0': t([7]), 'param.w3': t([3, 6]), 'param.b3': t([3]) });
    const err = thrownBy(() => readCheckpoint(bad));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `Expected chained layer shapes in checkpoint ${join(checkpointDir(bad), 'state.json')} but received param.w0 [7,5], param.b0 [7], param.w3 [3,6], param.b3 [3]; delete ${checkpointDir(bad)} to start afresh`,
    );
  });
});

describe('findNewestHead', () => {
  it('finds the most recently written head under <models>/heads, or nothing', async () => {
    const models = join(tmp, 'models');
    expect(await findNewestHead(models)).toBeUndefined();
    mkdirSync(join(models, 'heads'), { recursive: true });
    saveHead(join(models, 'heads', 'b-old'), weights(), meta(), 0.5);
    saveHead(join(models, 'heads', 'a-new'), weights(), meta(), 0.5);
    mkdirSync(join(models, 'heads', 'not-a-head'));
    utimesSync(join(models, 'heads', 'b-old', 'headstart.json'), new Date(1e12), new Date(1e12));
    expect(await findNewestHead(models)).toBe(join(models, 'heads', 'a-new'));
  });

  it('breaks a tie in time by the later folder name, whatever the names look like', async () => {
    const models = join(tmp, 'tie');
    // '-' sorts before '/', so comparing a bare name with a joined path would pick the wrong one.
    for (const name of ['-a', '-b']) {
      saveHead(join(models, 'heads', name), weights(), meta(), 0.5);
      utimesSync(join(models, 'heads', name, 'headstart.json'), new Date(1e12), new Date(1e12));
    }
    expect(await findNewestHead(models)).toBe(join(models, 'heads', '-b'));
  });

  it('takes a sweep folder by the head its best mark names (a symlink, or a file naming it)', async () => {
    const models = join(tmp, 'sweeps');
    const sweep = join(models, 'heads', 'toy-sweep');
    saveHead(join(models, 'heads', 'older'), weights(), meta(), 0.5);
    utimesSync(join(models, 'heads', 'older', 'headstart.json'), new Date(1e12), new Date(1e12));
    for (const config of ['lr=0.1', 'lr=0.01']) saveHead(join(sweep, config), weights(), meta(), 0.5);
    writeFileSync(join(sweep, 'sweep.json'), '{}');
    symlinkSync('lr=0.01', join(sweep, 'best'), 'dir');
    expect(await findNewestHead(models)).toBe(join(sweep, 'best'));
    rmSync(join(sweep, 'best'));
    writeFileSync(join(sweep, 'best'), 'lr=0.1\n');
    expect(await findNewestHead(models)).toBe(join(sweep, 'lr=0.1'));
    rmSync(join(sweep, 'best'));
    expect(await findNewestHead(models)).toBe(join(models, 'heads', 'older'));
  });
});

/** A consistent set of param.* tensors: 1 input, 2 hidden, 1 class. */
function params(): Record<string, { shape: number[]; data: Float32Array }> {
  const t = (...shape: number[]): { shape: number[]; data: Float32Array } => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) });
  return { 'param.w0': t(2, 1), 'param.b0': t(2), 'param.w3': t(2, 2), 'param.b3': t(2), 'param.w6': t(1, 2), 'param.b6': t(1) };
}

/** The state the trainer writes after `epoch` epochs (readCheckpoint checks what the trainer takes back). */
function trainerState(epoch: number, step = epoch): Record<string, unknown> {
  const history = Array.from({ length: epoch }, (_, i) => ({ epoch: i + 1, trainLoss: 1 / (i + 1), trainAccuracy: 0.5, testAccuracy: 0.5, seconds: 0.1 }));
  return { history, dev: { a: 1, b: 0 }, step, best: { epoch: 1, accuracy: 0.5, dev: { a: 1, b: 0 } } };
}

describe('readCheckpoint', () => {
  it('reads back what writeCheckpoint wrote', () => {
    const out = join(tmp, 'ck-ok');
    writeCheckpoint(out, 2, { '--lr': 0.1 }, trainerState(2, 7), { ...params(), 'param.w0': { shape: [2, 1], data: new Float32Array([1, 2]) } });
    const ck = readCheckpoint(out)!;
    expect(ck.meta.epoch).toBe(2);
    expect(ck.meta.state).toEqual(trainerState(2, 7));
    expect(Array.from(ck.tensors.get('param.w0')!.data)).toEqual([1, 2]);
  });

  it('refuses a state.json that is not JSON, naming the file', () => {
    const out = join(tmp, 'ck-garbled');
    mkdirSync(checkpointDir(out), { recursive: true });
    const statePath = join(checkpointDir(out), 'state.json');
    writeFileSync(statePath, '{"formatVersion": 1, "epo');
    expect(() => readCheckpoint(out)).toThrow(InputError);
    expect(() => readCheckpoint(out)).toThrow(`Expected JSON in checkpoint ${statePath} but it does not parse; delete ${checkpointDir(out)} to start afresh`);
  });

  it('refuses a state.json that is JSON but not a checkpoint', () => {
    const out = join(tmp, 'ck-foreign');
    mkdirSync(checkpointDir(out), { recursive: true });
    const statePath = join(checkpointDir(out), 'state.json');
    writeFileSync(statePath, '{"hello": 1}');
    expect(() => readCheckpoint(out)).toThrow(InputError);
    expect(() => readCheckpoint(out)).toThrow(`Expected a headstart checkpoint (formatVersion 1, file, tensors) in ${statePath} but received {"hello":1}`);
  });

  it('refuses a checkpoint that lacks a param.* tensor, naming it, instead of failing on resume', () => {
    const out = join(tmp, 'ck-missing');
    const { 'param.w3': _, ...rest } = params();
    writeCheckpoint(out, 1, { '--lr': 0.1 }, trainerState(1), rest);
    const err = thrownBy(() => readCheckpoint(out));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `Expected tensors param.w0, param.b0, param.w3, param.b3, param.w6, param.b6 in checkpoint ${join(checkpointDir(out), 'state.json')} but param.w3 is missing; delete ${checkpointDir(out)} to start afresh`,
    );
  });

  it('refuses param.* tensors whose shapes do not chain into a head', () => {
    const out = join(tmp, 'ck-unchained');
    writeCheckpoint(out, 1, {}, trainerState(1), { ...params(), 'param.b3': { shape: [3], data: new Float32Array(3) } });
    const err = thrownBy(() => readCheckpoint(out));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `Expected chained layer shapes in checkpoint ${join(checkpointDir(out), 'state.json')} but received param.w0 [2,1], param.b0 [2], param.w3 [2,2], param.b3 [3], param.w6 [1,2], param.b6 [1]; delete ${checkpointDir(out)} to start afresh`,
    );
  });

  it('refuses best.* and slot.* tensors that do not fit a parameter', () => {
    const statePath = (out: string): string => join(checkpointDir(out), 'state.json');
    const best = join(tmp, 'ck-best');
    writeCheckpoint(best, 1, {}, trainerState(1), { ...params(), 'best.w3': { shape: [2, 1], data: new Float32Array(2) } });
    let err = thrownBy(() => readCheckpoint(best));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected tensor best.w3 in checkpoint ${statePath(best)} to match param.w3 [2,2] but received [2,1]; delete ${checkpointDir(best)} to start afresh`);
    const slot = join(tmp, 'ck-slot');
    writeCheckpoint(slot, 1, {}, trainerState(1), { ...params(), 'slot.w9.m': { shape: [2], data: new Float32Array(2) } });
    err = thrownBy(() => readCheckpoint(slot));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected tensor slot.w9.m in checkpoint ${statePath(slot)} to match a parameter but received [2]; delete ${checkpointDir(slot)} to start afresh`);
  });

  it('refuses a tensor entry without a shape, or one past the end of the tensors file', () => {
    const out = join(tmp, 'ck-index');
    writeCheckpoint(out, 1, {}, trainerState(1), params());
    const statePath = join(checkpointDir(out), 'state.json');
    const good = readFileSync(statePath, 'utf8');
    const state = JSON.parse(good) as { tensors: { name: string; shape?: number[]; offset: number }[] };
    delete state.tensors[2]!.shape;
    writeFileSync(statePath, JSON.stringify(state));
    let err = thrownBy(() => readCheckpoint(out));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `Expected tensor entries {name, shape, offset, length} in checkpoint ${statePath} but received {"name":"param.w3","offset":4,"length":4}; delete ${checkpointDir(out)} to start afresh`,
    );
    const shifted = JSON.parse(good) as { tensors: { offset: number }[] };
    shifted.tensors[0]!.offset = 12;
    writeFileSync(statePath, JSON.stringify(shifted));
    err = thrownBy(() => readCheckpoint(out));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `Expected tensor param.w0 within the 13 floats of checkpoint ${join(checkpointDir(out), 'tensors-1.bin')} but it ends at 14; delete ${checkpointDir(out)} to start afresh`,
    );
  });

  it('refuses what the trainer takes back when it is not what writeCheckpoint wrote', () => {
    const out = join(tmp, 'ck-state');
    writeCheckpoint(out, 2, { '--lr': 0.1 }, trainerState(2), params());
    const statePath = join(checkpointDir(out), 'state.json');
    const good = readFileSync(statePath, 'utf8');
    const afresh = `delete ${checkpointDir(out)} to start afresh`;
    const cases: [string, (m: Record<string, unknown> & { state: Record<string, unknown> }) => void, string][] = [
      ['epoch', (m) => (m.epoch = -1), `Expected a positive integer for "epoch" in checkpoint ${statePath} but received -1; ${afresh}`],
      ['fingerprint', (m) => (m.fingerprint = null), `Expected an object of settings for "fingerprint" in checkpoint ${statePath} but received null; ${afresh}`],
      [
        'history',
        (m) => (m.state.history = [(m.state.history as unknown[])[0]]),
        `Expected the 2 epochs' results for "state.history" in checkpoint ${statePath} but received [{"epoch":1,"trainLoss":1,"trainAccuracy":0.5,"testAccuracy"; ${afresh}`,
      ],
      ['step', (m) => (m.state.step = 1.5), `Expected a non-negative integer for "state.step" in checkpoint ${statePath} but received 1.5; ${afresh}`],
      ['dev', (m) => (m.state.dev = { a: 1 }), `Expected {"a": number, "b": number} for "state.dev" in checkpoint ${statePath} but received {"a":1}; ${afresh}`],
      [
        'best',
        (m) => ((m.state.best as Record<string, unknown>).epoch = 3),
        `Expected {"epoch": 1…2, "value": number, "dev": ...} for "state.best" in checkpoint ${statePath} but received {"epoch":3,"accuracy":0.5,"dev":{"a":1,"b":0}}; ${afresh}`,
      ],
      ['file', (m) => (m.file = '../../../dev/zero'), `Expected "file": "tensors-<epoch>.bin" in checkpoint ${statePath} but received "../../../dev/zero"; ${afresh}`],
    ];
    for (const [name, change, message] of cases) {
      const m = JSON.parse(good) as Record<string, unknown> & { state: Record<string, unknown> };
      change(m);
      writeFileSync(statePath, JSON.stringify(m));
      const err = thrownBy(() => readCheckpoint(out));
      expect(err, name).toBeInstanceOf(InputError);
      expect(err.message, name).toBe(message);
    }
  });

  it('refuses a NaN in a tensor, some best.* tensors without the others, and a folder for state.json', () => {
    const out = join(tmp, 'ck-nan');
    const tensors = { ...params(), 'best.w0': { shape: [2, 1], data: new Float32Array(2) } };
    writeCheckpoint(out, 1, {}, trainerState(1), tensors);
    const statePath = join(checkpointDir(out), 'state.json');
    let err = thrownBy(() => readCheckpoint(out));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `Expected all or none of the best.* tensors in checkpoint ${statePath} but best.b0, best.w3, best.b3, best.w6, best.b6 are missing; delete ${checkpointDir(out)} to start afresh`,
    );
    writeCheckpoint(out, 1, {}, trainerState(1), { ...params(), 'param.w3': { shape: [2, 2], data: new Float32Array([0, Infinity, 0, 0]) } });
    err = thrownBy(() => readCheckpoint(out));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `Expected finite numbers in tensor param.w3 of checkpoint ${join(checkpointDir(out), 'tensors-1.bin')} but value 1 is Infinity; delete ${checkpointDir(out)} to start afresh`,
    );
    rmSync(statePath);
    mkdirSync(statePath);
    err = thrownBy(() => readCheckpoint(out));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected the checkpoint state in head file ${statePath} but it is a folder`);
  });
});
