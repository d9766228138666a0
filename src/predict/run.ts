/** `headstart predict <image...>`: the top classes of each image, by name, with probabilities. */
import { InputError } from '../errors.js';
import { progressBar } from '../progress.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { formatPredictions, predictImages } from './predict.js';
import { openPredictor, resolveHead, type Device } from './predictor.js';

export async function runPredict(args: CommandArgs, ctx: RunContext): Promise<CommandResult> {
  const files = args.positionals;
  const head = await resolveHead(args.options.head as string | undefined, 'models');
  const note = (line: string): void => {
    ctx.stderr.write(`${line}\n`);
  };
  const weights = args.options.weights as string | undefined;
  const predictor = await openPredictor({
    head,
    weightsPath: weights,
    weightsGiven: weights !== undefined,
    device: (args.options.device as Device | undefined) ?? 'auto',
    modelsDir: 'models',
    env: ctx.env,
    onNote: note,
  });
  try {
    const bar = files.length > 64 ? progressBar({ stream: ctx.stderr, label: 'predict', unit: 'images', clock: ctx.clock }) : undefined;
    const outcome = await predictImages(predictor, files, {
      top: (args.options.top as number | undefined) ?? 3,
      maxImagePixels: args.options['max-image-pixels'] as number | undefined,
      onProgress: bar ? (d, t) => bar.update(d, t) : undefined,
      onFailure: (f) => note(`headstart: ${f.error}`),
    });
    bar?.finish();
    const { facts } = predictor;
    const data = {
      head: facts.dir,
      weights: facts.weightsId,
      imageSize: facts.imageSize,
      provider: predictor.trunk.provider,
      predictions: outcome.predictions,
      failures: outcome.failures,
    };
    return { text: formatPredictions(outcome), data, exitCode: outcome.failures.length > 0 ? new InputError('').exitCode : undefined };
  } finally {
    await predictor.close();
  }
}
