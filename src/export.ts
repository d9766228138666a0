/** `exportOnnx` (the library) and `headstart export --onnx FILE`: the trunk and the trained head as one ONNX model for any ONNX Runtime. */
import { getBackbone } from './backbones/index.js';
import { UsageError, expected } from './errors.js';
import { INPUT_NAME, trunkMapShape } from './extract/graph.js';
import { PROBABILITIES_NAME, buildExportGraph } from './export-graph.js';
import type { LoadedHead } from './head/types.js';
import { writeFileAtomic } from './io/atomic.js';
import { type HeadFacts, headFacts, headNormalization, resolveHead, trunkWeightsFor } from './predict/predictor.js';
import type { CommandArgs, CommandResult, RunContext } from './types.js';
import { EXPORT_DEFAULTS, withDefaults } from './api/defaults.js';
import { resolveHooks } from './api/reporter.js';
import type { ExportOptions, Hooks } from './api/types.js';
import { contextHooks } from './run-context.js';
import { TOOL_VERSION } from './version.js';

export interface ExportResult {
  file: string;
  bytes: number;
  /** The images it takes: normalised with `mean` and `std` (its training images'). */
  input: { name: string; shape: (number | string)[]; mean: number[]; std: number[] };
  output: { name: string; shape: (number | string)[] };
  classes: string[];
  weights: string;
  /** The backbone's registry id. */
  backbone: string;
}

/**
 * One ONNX model of the backbone's trunk and a trained head (default: the newest under
 * models/heads/): normalised images in, class probabilities out, written to `options.onnx`.
 */
export async function exportOnnx(options: ExportOptions, hooks: Hooks = {}): Promise<ExportResult & { head: string }> {
  const o = withDefaults(EXPORT_DEFAULTS, options);
  if (o.onnx === undefined) throw new UsageError(expected('an output file', '--onnx', undefined));
  const { env } = resolveHooks(hooks);
  const head = await resolveHead(o.head, o.modelsDir);
  return { ...(await writeOnnxModel(head, o.onnx, { weightsPath: o.weights, modelsDir: o.modelsDir, env })), head: head.dir };
}

/** The head's normalisation as plain arrays (for the result and its JSON). */
function normalizationOf(facts: HeadFacts): { mean: number[]; std: number[] } {
  const n = headNormalization(facts);
  return { mean: [...n.mean], std: [...n.std] };
}

/** Writes the model to `file` (through a temporary name, so a half-written model never appears). */
export async function writeOnnxModel(head: LoadedHead, file: string, opts: { weightsPath?: string; modelsDir?: string; env?: Record<string, string | undefined> }): Promise<ExportResult> {
  const facts = headFacts(head);
  const { backbone, weights, weightsId } = await trunkWeightsFor(facts, opts.weightsPath, opts);
  const mapShape = trunkMapShape({ backbone, weights }, facts.imageSize);
  const bytes = buildExportGraph(
    { backbone, weights },
    {
      imageSize: facts.imageSize,
      mapShape,
      layers: head.layers,
      calibration: facts.calibration,
      metadata: {
        classes: JSON.stringify(facts.classes),
        image_size: String(facts.imageSize),
        ...(facts.mean !== undefined ? { mean: JSON.stringify(facts.mean) } : {}),
        ...(facts.std !== undefined ? { std: JSON.stringify(facts.std) } : {}),
        backbone: backbone.id,
        weights: weightsId,
        headstart_version: TOOL_VERSION,
      },
    },
  );
  writeFileAtomic(file, bytes, { what: 'the ONNX model', hint: 'free some space and run headstart export again' });
  return {
    file,
    bytes: bytes.byteLength,
    input: { name: INPUT_NAME, shape: ['N', 3, facts.imageSize, facts.imageSize], ...normalizationOf(facts) },
    output: { name: PROBABILITIES_NAME, shape: ['N', facts.classes.length] },
    classes: facts.classes,
    weights: weightsId,
    backbone: backbone.id,
  };
}

export async function runExport(args: CommandArgs<Partial<ExportOptions>>, ctx: RunContext): Promise<CommandResult> {
  const { head, ...result } = await exportOnnx(args.options as ExportOptions, contextHooks(ctx));
  const shape = (s: (number | string)[]): string => `[${s.join(', ')}]`;
  const weights = /^[0-9a-f]{64}$/.test(result.weights) ? `sha256 ${result.weights.slice(0, 16)}…` : result.weights;
  const text = [
    `wrote ${result.file} (${(result.bytes / 1e6).toFixed(1)} MB): head ${head} on ${getBackbone(result.backbone).name} ${weights}`,
    `  input  ${result.input.name} ${shape(result.input.shape)} float32, normalised (mean ${result.input.mean.join(', ')}, std ${result.input.std.join(', ')}), ${result.input.shape[2]}×${result.input.shape[3]} RGB`,
    `  output ${result.output.name} ${shape(result.output.shape)}: ${result.classes.join(', ')}`,
  ].join('\n');
  return { text, data: result };
}
