/**
 * A small real setting for the predict/evaluate/export/inspect tests: an image folder made with
 * sharp, its features extracted by the real `extract` command through ONNX Runtime with the narrow
 * fixture weights, and a head written in the format train-head writes (random init, seeded).
 * Everything lives in one temporary folder, which is also the working directory (so `models/`
 * and `cache/` defaults land there, not in the repository).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runExtract } from '../../src/extract/run.js';
import { saveHead } from '../../src/head/head-io.js';
import { buildHead } from '../../src/head/model.js';
import type { HeadMeta, HeadWeights } from '../../src/head/types.js';
import type { TextSink } from '../../src/progress.js';
import type { RunContext } from '../../src/types.js';
import { loadVgg16 } from '../../src/backbones/vgg16/index.js';
import { fixturePath } from '../helpers/fixtures.js';
import { uniform01 } from '../../src/random.js';

export const CLASSES = ['bars', 'blobs', 'cross'];
export const WEIGHTS = fixturePath('narrow.safetensors');

export interface Scenario {
  root: string;
  data: string;
  cache: string;
  head: string;
  weightsId: string;
  /** Test images in the order the cache holds them (classes sorted, files sorted). */
  testImages: string[];
  previousCwd: string;
  close(): void;
}

export function sink(): TextSink & { text: string } {
  const s = {
    text: '',
    write(chunk: string) {
      s.text += chunk;
      return true;
    },
  };
  return s;
}

export function context(stderr: TextSink = sink()): RunContext {
  return { stderr, json: false, verbose: false, env: {} };
}

/** A picture of class `label`: horizontal bars, random blobs or a cross, plus noise. */
export async function writePicture(file: string, label: number, seed: number, width = 32, height = 32): Promise<void> {
  const next = uniform01(seed);
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const on = label === 0 ? y % 8 < 4 : label === 1 ? next() < 0.3 : Math.abs(x - width / 2) < 3 || Math.abs(y - height / 2) < 3;
      for (let c = 0; c < 3; c++) rgb[3 * (y * width + x) + c] = Math.min(255, (on ? 200 : 30) + Math.floor(next() * 40) + 20 * c * label);
    }
  }
  await sharp(rgb, { raw: { width, height, channels: 3 } })
    .png()
    .toFile(file);
}

export function headMeta(over: { classes: string[]; weightsId: string; imageSize: number; featureShape: number[]; cache: string; inFeatures: number; hidden: number }): HeadMeta {
  return {
    format: 'headstart-head',
    formatVersion: 1,
    toolVersion: 'test',
    createdAt: new Date(0).toISOString(),
    classes: over.classes,
    inFeatures: over.inFeatures,
    hidden: over.hidden,
    input: { layout: 'map', featureShape: over.featureShape, transform: 'test' },
    cache: { path: over.cache, weightsId: over.weightsId, imageSize: over.imageSize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], dataName: 'shapes' },
    settings: { optimizer: 'sgd', lr: 0.001, weightDecay: 0, momentum: 0.9, batchSize: 4, epochs: 1, dropout: 0, patience: 0, fold: true, init: 'random', seed: 1 },
    training: { epochsRun: 1, bestEpoch: 1, stoppedEarly: false, folded: true },
  };
}

export function randomHead(classes: number, inFeatures: number, hidden: number, seed = 1): HeadWeights {
  return buildHead({ classes, init: 'random', seed, inFeatures, hidden });
}

export async function makeScenario(prefix: string): Promise<Scenario> {
  const previousCwd = process.cwd();
  const root = mkdtempSync(join(tmpdir(), `headstart-${prefix}-`));
  process.chdir(root);
  const data = join(root, 'shapes');
  const testImages: string[] = [];
  for (const [split, count] of [
    ['train', 4],
    ['test', 2],
  ] as const) {
    for (let label = 0; label < CLASSES.length; label++) {
      const dir = join(data, split, CLASSES[label]!);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < count; i++) {
        const file = join(dir, `img${i}.png`);
        // One test image per class is not 32×32, so the resize path is part of what is compared.
        const odd = split === 'test' && i === 1;
        await writePicture(file, label, 1000 * label + 10 * i + (split === 'test' ? 5 : 0), odd ? 48 : 32, odd ? 36 : 32);
        if (split === 'test') testImages.push(file);
      }
    }
  }
  const cache = join(root, 'cache', 'shapes.h5');
  await runExtract({ options: { data, cache, weights: WEIGHTS, device: 'cpu', split: 'all', batchSize: 4 }, positionals: [] }, context());
  const { checkpoint, vgg } = await loadVgg16(WEIGHTS);
  const channels = vgg.outChannels;
  const hidden = vgg.classifier!.fc0.weight.shape[0]!;
  const head = join(root, 'models', 'heads', 'shapes-test');
  const weights = randomHead(CLASSES.length, channels * 49, hidden);
  saveHead(head, weights, headMeta({ classes: CLASSES, weightsId: checkpoint.sha256, imageSize: 32, featureShape: [channels, 1, 1], cache, inFeatures: channels * 49, hidden }), 0);
  return {
    root,
    data,
    cache,
    head,
    weightsId: checkpoint.sha256,
    testImages,
    previousCwd,
    close() {
      process.chdir(previousCwd);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
