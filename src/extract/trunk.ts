/**
 * A backbone's frozen trunk, ready to run: the ONNX model from the store (built from the weights when
 * missing) in a session on the chosen provider. `run` takes any number of images, so the last,
 * smaller batch of a data set needs nothing special (the graph's batch dimension is symbolic).
 */
import * as ort from 'onnxruntime-node';
import { InputError, UsageError, expected } from '../errors.js';
import { PRECISIONS, calibrationId } from '../quantize/calibration.js';
import { INPUT_NAME, MAP_NAME, POOLED_NAME, buildTrunkGraph, trunkFeatureShape } from './graph.js';
import { ensureModel } from './model-store.js';
import { createSession } from './session.js';
import type { Trunk, TrunkOptions } from './types.js';
import { elementCount } from '../shape.js';

export type { Trunk, TrunkOptions } from './types.js';

export interface OpenedTrunk extends Trunk {
  /** True when this call built the model file; false when it reused the stored one. */
  built: boolean;
}

export async function openTrunk(opts: TrunkOptions): Promise<OpenedTrunk> {
  const { backbone, imageSize, output } = opts;
  const trunkWeights = { backbone, weights: opts.weights };
  // Validates the size before anything is built or written.
  const featureShape = trunkFeatureShape(trunkWeights, imageSize, output);
  const modelsDir = opts.modelsDir ?? 'models';
  const precision = opts.precision ?? 'fp32';
  if (!PRECISIONS.includes(precision)) throw new UsageError(expected(`one of ${PRECISIONS.join(', ')}`, 'the trunk precision', precision));
  const calibration = precision === 'int8' ? opts.calibration : undefined;
  if (precision === 'int8' && calibration === undefined) throw new UsageError('an int8 trunk needs its calibration (calibrateTrunk makes it from the first images)');
  const key = { backbone: backbone.id, weightsId: opts.weightsId, imageSize, output, precision, calibrationId: calibration && calibrationId(calibration) };
  const build = () => buildTrunkGraph(trunkWeights, { imageSize, output, calibration });
  const what = precision === 'int8' ? `${backbone.name} int8` : backbone.name;
  const sessionOpts = { onNote: opts.onNote, what, intraOpThreads: opts.intraOpThreads, hardware: opts.hardware };
  let stored = await ensureModel(modelsDir, key, build, { onNote: opts.onNote, what });
  let started: Awaited<ReturnType<typeof createSession>>;
  try {
    started = await createSession(stored.bytes ?? stored.path, opts.device, sessionOpts);
  } catch (err) {
    // A stored file that ONNX Runtime cannot read (damaged, or from another tool) is rebuilt once.
    if (!(err instanceof InputError) || stored.built) throw err;
    opts.onNote?.(`${err.message}; rebuilding it`);
    stored = await ensureModel(modelsDir, key, build, { onNote: opts.onNote, what, rebuild: true });
    started = await createSession(stored.bytes!, opts.device, sessionOpts);
  }
  const { session, provider } = started;
  const outputName = output === 'map' ? MAP_NAME : POOLED_NAME;
  const perImageIn = 3 * imageSize * imageSize;
  const perImageOut = elementCount(featureShape);
  let closed = false;

  return {
    provider,
    featureShape,
    modelPath: stored.path,
    built: stored.built,
    precision,
    calibration,
    async run(images: Float32Array, n: number): Promise<Float32Array> {
      if (closed) throw new Error(`the ${backbone.name} trunk is closed`);
      if (!Number.isInteger(n) || n < 1) throw new InputError(expected('a positive integer', 'the number of images', n));
      if (images.length !== n * perImageIn) {
        throw new InputError(expected(`${n}×3×${imageSize}×${imageSize} = ${n * perImageIn} values`, `the ${backbone.name} trunk input`, images.length));
      }
      const feeds = { [INPUT_NAME]: new ort.Tensor('float32', images, [n, 3, imageSize, imageSize]) };
      const result = await session.run(feeds, [outputName]);
      const data = result[outputName]!.data;
      if (!(data instanceof Float32Array) || data.length !== n * perImageOut) {
        throw new Error(`${backbone.name} trunk returned ${data.length} values for ${n} images, not ${n * perImageOut}`);
      }
      return data;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await session.release();
    },
  };
}
