/** Loads a checkpoint of any supported format, detected from its content rather than its name. */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { indexLegacyPth, indexZipPth, legacyDataStart } from './pth.js';
import { indexSafetensors, looksLikeSafetensors } from './safetensors.js';
import { readAll } from './tensors.js';
import type { CheckpointFormat, LoadedCheckpoint, OpenedCheckpoint, TensorIndex } from './types.js';
import { truncated } from './views.js';

export interface LoadCheckpointOptions {
  /** Message for a missing file (a backbone says how to fetch its weights). */
  notFound?: string;
}

/**
 * Reads every tensor of the checkpoint at `path`; see openCheckpoint. Strided tensors are copied
 * into row-major order, and such copies may not take more memory than the file itself: an expanded
 * tensor that would (a few bytes standing for gigabytes) is refused before it is allocated. Use
 * loadBackboneWeights to read one against a backbone's layout. NaN or Inf in any tensor is refused.
 */
export async function loadCheckpoint(path: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const { format, sha256, tensors, bytes } = await openCheckpoint(path, options);
  return { path, format, sha256, stateDict: readAll(tensors, path, bytes, `the file's own ${bytes} bytes`) };
}

/**
 * Reads the whole file once and lists its tensors without reading them: each is checked against the
 * bytes it points at, so callers can check names and shapes before any tensor takes memory. Tensors
 * read later are float32 views of that one buffer (copied only where strided or not 4-byte aligned),
 * and the SHA-256 is computed over the same bytes.
 */
export async function openCheckpoint(path: string, options: LoadCheckpointOptions = {}): Promise<OpenedCheckpoint> {
  let buf: Buffer;
  try {
    buf = await readAligned(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(options.notFound ?? `Checkpoint not found: ${path}`);
    if (code === 'EISDIR') throw new InputError(`${path} is a directory; expected a checkpoint file (.pth or .safetensors)`);
    throw new InputError(`Cannot read checkpoint ${path}: ${(err as Error).message}`);
  }
  const { format, tensors } = indexCheckpoint(buf, path);
  const sha256 = createHash('sha256').update(buf).digest('hex');
  return { path, format, sha256, tensors, bytes: buf.length };
}

/**
 * The file's bytes in one buffer, placed so that float32 storages start on 4-byte boundaries: legacy
 * torch.save puts them wherever its pickles end (safetensors after a header of any length), and
 * Float32Array views need alignment. The first
 * MiB is read twice; nothing else is copied.
 */
async function readAligned(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(Math.min(size, 1 << 20));
    await readFully(fh, head, 0, head.length, 0);
    const shift = alignmentShift(head);
    const whole = Buffer.allocUnsafeSlow(size + shift);
    await readFully(fh, whole, shift, size, 0);
    return whole.subarray(shift);
  } finally {
    await fh.close();
  }
}

/** Bytes to put before a file starting with `head` so that its float32 data lands on 4-byte boundaries. */
export function alignmentShift(head: Buffer): number {
  // Safetensors first: its header length's low byte may well be 0x80, like a pickle's PROTO.
  const start = looksLikeSafetensors(head) ? 8 + Number(head.readBigUInt64LE(0)) : head[0] === 0x80 ? legacyDataStart(head) : undefined;
  return start === undefined ? 0 : (4 - (start % 4)) % 4;
}

async function readFully(fh: FileHandle, into: Buffer, offset: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(into, offset + done, Math.min(length - done, 1 << 30), position + done);
    if (bytesRead === 0) throw new Error(`file shrank while being read (${done} of ${length} bytes)`);
    done += bytesRead;
  }
}

/** Which reader `buf` needs; `file` only names it in errors. */
export function detectFormat(buf: Buffer, file: string): CheckpointFormat {
  if (buf.length === 0) throw new InputError(`${file} is empty (0 bytes); expected a PyTorch checkpoint or a .safetensors file`);
  // Zip local file header, or the end record of an archive whose first entry was cut away.
  if (buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && (buf[2] === 3 || buf[2] === 5)) return 'pth-zip';
  // Before the pickle test: a header length of 128 + 256k starts with the byte of PROTO.
  if (looksLikeSafetensors(buf)) return 'safetensors';
  // Legacy torch.save starts with a pickle (PROTO opcode) of its magic number.
  if (buf[0] === 0x80) return 'pth-legacy';
  if (buf.length < 9) {
    // Too short to tell; most likely a download that stopped at once.
    throw truncated(file, `only ${buf.length} bytes`);
  }
  throw new InputError(`${file} is not a checkpoint headstart can read; expected a PyTorch .pth (zip or legacy torch.save) or a .safetensors file`);
}

/** The tensors of the checkpoint in `buf`, checked but not read. */
export function indexCheckpoint(buf: Buffer, file: string): { format: CheckpointFormat; tensors: TensorIndex } {
  const format = detectFormat(buf, file);
  const tensors = format === 'pth-zip' ? indexZipPth(buf, file) : format === 'pth-legacy' ? indexLegacyPth(buf, file) : indexSafetensors(buf, file);
  return { format, tensors };
}
