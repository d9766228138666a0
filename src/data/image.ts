/**
 * Decoding any image sharp reads into uint8 HWC RGB as PIL's `Image.open(p).convert('RGB')` gives
 * it (what torchvision's ImageFolder loader and `predict` in PyTorch would see):
 * - EXIF orientation is applied (sharp's autoOrient);
 * - alpha is DROPPED, not composited: convert('RGB') keeps the colour channels as they are;
 * - gray (and gray+alpha) becomes three equal channels;
 * - 16-bit RGB keeps the high byte (what sharp's cast and PIL's RGB;16B unpacker both do), while
 *   16-bit gray is CLIPPED to 255 as PIL's I→RGB conversion does (PIL opens it as 32-bit 'I').
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { InputError, firstLine } from '../errors.js';
import { type Normalization, normalizedFromRgb } from './preprocess.js';
import type { RgbImage } from './types.js';

export const IMAGE_KINDS = 'an image (PNG, JPEG, WebP, GIF, TIFF or AVIF)';

/**
 * The default bound on an image's pixels (width × height, from its header, before decoding). Decoding
 * and resizing take about 19 bytes per pixel at peak (measured: 1.9 GB for 100 megapixels), so this
 * admits every phone's and every full-frame camera's photos (up to about 61 megapixels) at under 2 GB,
 * and refuses decompression bombs; larger photos (100+ megapixel medium format) need a higher limit.
 */
export const DEFAULT_MAX_IMAGE_PIXELS = 100_000_000;
/** The option that raises the bound, named in messages. */
export const MAX_PIXELS_OPTION = '--max-image-pixels';

export interface DecodeOptions {
  /** Images with more pixels than this are refused before decoding (default DEFAULT_MAX_IMAGE_PIXELS). */
  limitInputPixels?: number;
}

const fmt = (n: number): string => n.toLocaleString('en-US');

function tooLarge(path: string, width: number, height: number, limit: number): InputError {
  const pixels = width * height;
  return new InputError(
    `Expected ${IMAGE_KINDS} of at most ${fmt(limit)} pixels for ${path} but received ${fmt(width)}×${fmt(height)} = ${fmt(pixels)} pixels; raise the limit with ${MAX_PIXELS_OPTION} ${pixels} to read it`,
  );
}

/** Why sharp failed, in the words a user can act on. */
function describeFailure(path: string, error: unknown, limit: number): InputError {
  const reason = firstLine(error);
  if (error instanceof InputError) return error;
  if (/pixel limit/i.test(reason)) {
    // the header check comes first; this is for a frame larger than the header said
    return new InputError(`Expected ${IMAGE_KINDS} of at most ${fmt(limit)} pixels for ${path} but received a larger one (${reason}); raise the limit with ${MAX_PIXELS_OPTION}`, { cause: error });
  }
  if (/unsupported image format/i.test(reason)) {
    return new InputError(`Expected ${IMAGE_KINDS} for ${path} but received a file in no image format sharp reads`, { cause: error });
  }
  return new InputError(`Expected ${IMAGE_KINDS} for ${path} but received one that cannot be decoded (truncated or corrupt: ${reason})`, { cause: error });
}

/** Checks that `path` is a non-empty regular file, with one clear error otherwise. */
export async function checkImageFile(path: string): Promise<void> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`Expected ${IMAGE_KINDS} for ${path} but ${code === 'ENOENT' ? 'there is no such file' : `it cannot be read (${code ?? firstLine(error)})`}`, { cause: error });
  }
  if (info.isDirectory()) throw new InputError(`Expected ${IMAGE_KINDS} for ${path} but received a directory`);
  if (!info.isFile()) throw new InputError(`Expected ${IMAGE_KINDS} for ${path} but received something that is not a regular file`);
  if (info.size === 0) throw new InputError(`Expected ${IMAGE_KINDS} for ${path} but received an empty (0-byte) file`);
}

/** Decodes without checking the file first (callers that already stat'ed it, e.g. image folders). */
export async function decodeRgbUnchecked(path: string, options: DecodeOptions = {}): Promise<RgbImage> {
  const limit = options.limitInputPixels ?? DEFAULT_MAX_IMAGE_PIXELS;
  const open = () => sharp(path, { limitInputPixels: limit, failOn: 'error', autoOrient: true });
  try {
    // the header alone gives the size: a too-large image is refused before a pixel is decoded
    const meta = await sharp(path, { limitInputPixels: false, failOn: 'error' }).metadata();
    if (meta.width !== undefined && meta.height !== undefined && meta.width * meta.height > limit) throw tooLarge(path, meta.width, meta.height, limit);
    const gray16 = meta.depth === 'ushort' && (meta.channels === 1 || meta.channels === 2);
    if (gray16) {
      const { data, info } = await open().extractChannel(0).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
      const values = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
      const rgb = new Uint8Array(info.width * info.height * 3);
      for (let p = 0; p < values.length; p++) {
        const v = Math.min(values[p]!, 255);
        rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = v;
      }
      return { data: rgb, width: info.width, height: info.height };
    }
    const { data, info } = await open().raw().toBuffer({ resolveWithObject: true });
    const n = info.width * info.height;
    const ch = info.channels;
    if (ch === 3) return { data: new Uint8Array(data.buffer, data.byteOffset, n * 3), width: info.width, height: info.height };
    const rgb = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) {
      const s = p * ch;
      if (ch >= 3) {
        rgb[3 * p] = data[s]!;
        rgb[3 * p + 1] = data[s + 1]!;
        rgb[3 * p + 2] = data[s + 2]!;
      } else {
        rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = data[s]!;
      }
    }
    return { data: rgb, width: info.width, height: info.height };
  } catch (error) {
    throw describeFailure(path, error, limit);
  }
}

/** Reads any image sharp decodes into uint8 HWC RGB; InputError naming the file otherwise. */
export async function decodeRgb(path: string, options: DecodeOptions = {}): Promise<RgbImage> {
  await checkImageFile(path);
  return decodeRgbUnchecked(path, options);
}

/** One image, any size, as the normalised float32 [3, size, size] tensor the trunk takes (for `predict`). */
export async function loadImageTensor(path: string, size: number, options: DecodeOptions = {}, normalization?: Normalization): Promise<Float32Array> {
  const img = await decodeRgb(path, options);
  return normalizedFromRgb(img.data, img.width, img.height, size, undefined, undefined, normalization);
}
