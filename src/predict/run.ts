/** `predict` (the library) and `headstart predict <image...>`: the top classes of each image, by name, with probabilities. */
import { PREDICT_DEFAULTS, withDefaults } from '../api/defaults.js';
import { resolveHooks } from '../api/reporter.js';
import type { Hooks, PredictOptions, PredictResult } from '../api/types.js';
import { InputError } from '../errors.js';
import { contextHooks } from '../run-context.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { formatPredictions, predictImages } from './predict.js';
import { openPredictor, resolveHead } from './predictor.js';

/** Above this many images a progress task is reported; for fewer it would be noise. */
const PROGRESS_FROM = 64;

/**
 * Classifies `options.images` with a trained head (default: the newest under models/heads/). An
 * image that cannot be read is a failure in the result (and a problem reported as it happens), not
 * an exception; the others are still classified.
 */
export async function predict(options: PredictOptions, hooks: Hooks = {}): Promise<PredictResult> {
  const o = withDefaults(PREDICT_DEFAULTS, options);
  const { reporter, env } = resolveHooks(hooks);
  const head = await resolveHead(o.head, o.modelsDir);
  const note = (line: string): void => reporter.note(line);
  const predictor = await openPredictor({ head, weightsPath: o.weights, weightsGiven: o.weights !== undefined, device: o.device, modelsDir: o.modelsDir, env, onNote: note });
  try {
    const task = o.images.length > PROGRESS_FROM ? reporter.progress('predict', 'images') : undefined;
    const outcome = await predictImages(predictor, [...o.images], {
      top: o.top,
      maxImagePixels: o.maxImagePixels,
      onProgress: task ? (d, t) => task.update(d, t) : undefined,
      onFailure: (f) => (reporter.problem ?? note)(f.error),
    });
    task?.finish();
    const { facts } = predictor;
    return { head: facts.dir, weights: facts.weightsId, imageSize: facts.imageSize, provider: predictor.trunk.provider, predictions: outcome.predictions, failures: outcome.failures };
  } finally {
    await predictor.close();
  }
}

export async function runPredict(args: CommandArgs<Omit<PredictOptions, 'images'>>, ctx: RunContext): Promise<CommandResult> {
  const data = await predict({ ...args.options, images: args.positionals }, contextHooks(ctx));
  return { text: formatPredictions(data), data, exitCode: data.failures.length > 0 ? new InputError('').exitCode : undefined };
}
