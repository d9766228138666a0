/**
 * Public types of the backbone seam: what a frozen trunk declares so that extract, the cache, fetch,
 * head initialisation, predict, export and inspect can use it by id alone. Generic code never looks
 * inside a backbone's weights (`W`): it hands them back to the backbone that made them.
 */
import type { OnnxNode, OnnxTensor } from '../onnx/proto.js';
import type { CheckpointFormat, StateDict, Tensor, TensorEntry } from '../weights/types.js';
import type { HeadInputMode, HeadKind } from '../head/types.js';

/** One Linear layer of a checkpoint's classifier: weight [out, in] row-major, bias [out]. */
export interface LinearLayer {
  weight: Tensor;
  bias: Tensor;
}

/**
 * How images become the trunk's input: resized to SIZE×SIZE (bilinear, antialiased, the aspect ratio
 * not kept, as torchvision's Resize((S, S))), then ToTensor and Normalize(mean, std).
 */
export interface Preprocessing {
  readonly resize: 'square';
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** The size to use when none is given: a model whose input is fixed at S×S, or whose file names one. */
  readonly imageSize?: number;
}

/** The checkpoint a backbone reads: its tensor names and shapes, checked before any tensor is read. */
export interface CheckpointLayout<W> {
  /** Throws InputError unless the names (not the shapes) are this backbone's; cheap, reads nothing. */
  recognise(dict: ReadonlyMap<string, unknown>, file: string): void;
  /**
   * Checks every name and shape (within the width limits the backbone allows), then reads the tensors
   * it uses. `read` holds them under the file's own names, in the file's order.
   */
  read(dict: ReadonlyMap<string, Tensor | TensorEntry>, file: string): { weights: W; read: StateDict };
  /** The one line for a weights file that is not there (how to fetch it, or what to pass instead). */
  missingMessage(path: string): string;
  /** For `headstart inspect`: a summary line, its JSON form and the parameters the weights hold. */
  describe(weights: W): { line: string; data: unknown; parameters: number };
  /**
   * For weights that are not a state_dict (a ready ONNX model): reads and checks the file itself,
   * instead of `read` on the tensors of a checkpoint. `sha256` is the file's, its weights identity.
   */
  load?(path: string): Promise<{ weights: W; sha256: string; format: CheckpointFormat }>;
}

/** The frozen trunk as an ONNX graph, built from the weights in memory. */
export interface TrunkLayout<W> {
  /** [C, h, w] of the trunk's map for square images of `imageSize`; InputError for a size it cannot take. */
  mapShape(weights: W, imageSize: number): [number, number, number];
  /** The map's side for an image size, and the least size, known without weights (a cache's attributes are checked by it). */
  mapSide(imageSize: number): number;
  readonly minImageSize: number;
  /**
   * The graph from the `input` value ([N, 3, S, S] float32) to the `output` value (the map, [N, C, h, w]):
   * nodes in topological order and their initializers. Checks the weights first (InputError).
   * A backbone has this or `model`.
   */
  nodes?(weights: W, input: string, output: string): { nodes: OnnxNode[]; initializers: OnnxTensor[] };
  /**
   * For a backbone that is a ready model: the serialized model, its one graph input `input`
   * ([N, 3, S, S] float32) and its one graph output `output` (the map, [N, C, h, w]).
   */
  model?(weights: W, imageSize: number, input: string, output: string): Uint8Array;
}

/** The layers a head can start from, its default kind and width, and how the trunk's map becomes its input. */
export interface HeadInit<W> {
  /** The head train-head builds unless told (--head). */
  readonly kind: HeadKind;
  /**
   * How a row of the trunk's map becomes the head's input: `pool7`, AdaptiveAvgPool2d((7,7)) +
   * flatten (VGG16's, C*49 inputs); `flatten`, the map as it is (a trunk that ends in global
   * pooling: C inputs).
   */
  readonly input: HeadInputMode;
  /** Hidden width of a head started at random when no pretrained layers are at hand. */
  readonly hidden: number;
  /** Whether its checkpoints offer classifier layers to start a head from; a head starts at random when not. */
  readonly offersClassifier: boolean;
  /** Names of the offered layers, for messages (`classifier.0/classifier.3`). */
  readonly layerNames: string;
  /** The first and second layers of the checkpoint's classifier; undefined when it offers none. */
  classifier(weights: W): { first: LinearLayer; second: LinearLayer } | undefined;
}

/** Seeded weights for runs without a pretrained file. */
export interface RandomInit<W> {
  make(seed: number, options: { classifier: boolean }): W;
  /** The weights id recorded in caches and heads, `random-<id>-seed<N>` by convention. */
  id(seed: number): string;
  /** The weights an id made by this backbone stands for (it may encode more than a seed), else undefined. */
  fromId(id: string): { weights: W; seed: number } | undefined;
}

/** Where `headstart fetch <id>` downloads the weights, and how the file is checked. */
export interface PublishedWeights {
  /** For messages: `<name> weights`. */
  readonly what: string;
  /** Name on disk; also the name torch.hub keeps it under in its cache. */
  readonly fileName: string;
  readonly url: string;
  /** Hex prefix the file's SHA-256 must start with (torchvision's naming). */
  readonly sha256Prefix?: string;
  /** The name `fetch --weights-version` knows it by (`v1`, `v2`), for a backbone that publishes more than one file. */
  readonly version?: string;
}

export interface Backbone<W extends object = object> {
  /** Registry key: in cache names (`<data>-<id>-<size>.h5`), cache and head metadata, model file names. */
  readonly id: string;
  /** How messages name it (its usual spelling, upper case where the paper has it). */
  readonly name: string;
  readonly preprocessing: Preprocessing;
  readonly checkpoint: CheckpointLayout<W>;
  readonly trunk: TrunkLayout<W>;
  readonly head: HeadInit<W>;
  readonly random: RandomInit<W>;
  /** Absent for a backbone without published weights (`fetch` then does not offer it). */
  readonly published?: PublishedWeights;
  /** Other published files of the same layout (older versions), each with its `version`; `published` stays the default. */
  readonly otherPublished?: readonly PublishedWeights[];
  /** The file that holds its weights when its id names one (`onnx:FILE`): where they are read when no other file is given. */
  readonly weightsFile?: string;
}

/** What a parameterised backbone (`onnx:FILE`) is made with besides its argument; all optional. */
export interface BackboneParams {
  /** The model output to take as features (default: its first). */
  output?: string;
  /** Normalize's mean and std (default: the model's metadata, else ImageNet's). */
  mean?: readonly number[];
  std?: readonly number[];
}

/**
 * Makes the backbones of ids `<prefix>:<arg>`. The backbone it returns has a canonical id that
 * records every parameter given, so that resolving that id again (predict, from a head's record)
 * gives the same backbone.
 */
export interface BackboneFactory {
  /** `onnx` for ids `onnx:FILE`. */
  readonly prefix: string;
  /** How help and messages show it: `onnx:FILE`. */
  readonly usage: string;
  /** InputError naming `where` and the argument when it makes no backbone. */
  make(arg: string, where: string, params: BackboneParams): Backbone;
  /** How file names (caches, stored models) spell the backbone of `arg`: letters, digits, '_' and '.'. */
  fileTag(arg: string): string;
}

/** Weights together with the backbone that reads them: what extract, predict and export pass around. */
export interface BackboneWeights<W extends object = object> {
  backbone: Backbone<W>;
  weights: W;
}
