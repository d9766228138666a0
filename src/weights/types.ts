/** A float32 tensor read from a checkpoint. `data` may be a view into the file's buffer (no copy). */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Parameter name (torchvision's, e.g. `features.0.weight`) to tensor, in the checkpoint's order. */
export type StateDict = Map<string, Tensor>;

/**
 * A tensor located in a checkpoint and checked against the bytes it reads (within its storage, its
 * shape and strides sane), but not read yet: callers check names and shapes first, so a file that
 * claims huge tensors is refused before any memory is spent on them.
 */
export interface TensorEntry {
  shape: number[];
  /** torch's name for the element type (`float32`, `float16`, …); only float32 can be read. */
  dtype: string;
  /** How many values the file stores for it: fewer than the shape holds when a stride is 0 (an expanded tensor). */
  stored: number;
  /** Bytes `read()` allocates: 0 for a view of the file's buffer, the whole tensor for a strided or unaligned one. */
  copyBytes: number;
  /** The values in row-major order; throws InputError for a dtype other than float32. */
  read(): Float32Array;
}

/** Tensors of a checkpoint by name, in its order, before any is read. */
export type TensorIndex = Map<string, TensorEntry>;

export type CheckpointFormat = 'pth-legacy' | 'pth-zip' | 'safetensors' | 'onnx';

export interface OpenedCheckpoint {
  path: string;
  format: CheckpointFormat;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
  tensors: TensorIndex;
  /** Size of the file in bytes. */
  bytes: number;
}

export interface LoadedCheckpoint {
  path: string;
  format: CheckpointFormat;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
  stateDict: StateDict;
}
