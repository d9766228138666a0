/**
 * The calibration as a value (scales per tensor) and as text: the JSON that the model file's
 * metadata, the cache's `calibration` attribute and a head's metadata carry, and the short id that
 * names the int8 model in the model store.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../errors.js';

/** 'fp32': the float trunk, exact. 'int8': the QDQ trunk of src/quantize/qdq.ts. */
export const PRECISIONS = ['fp32', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface Calibration {
  /** How the scales were found, in words; a cache's identity records it. */
  rule: string;
  /** The images the ranges were taken over. */
  images: number;
  /** Largest |q| of a weight (quantise.ts's WEIGHT_RANGE). */
  weightRange: number;
  /** [scale, zero point] of each calibrated tensor, in graph order. */
  tensors: Record<string, [number, number]>;
}

export function calibrationText(c: Calibration): string {
  return JSON.stringify({ rule: c.rule, images: c.images, weightRange: c.weightRange, tensors: c.tensors });
}

/** 12 hex digits of the SHA-256 of calibrationText: the model store keys int8 models on it. */
export function calibrationId(c: Calibration): string {
  return createHash('sha256').update(calibrationText(c)).digest('hex').slice(0, 12);
}

/** Reads calibrationText back; `where` names its origin for the one-line error. */
export function parseCalibration(text: string, where: string): Calibration {
  const bad = (why: string): InputError => new InputError(`${where} has a calibration that cannot be read (${why}); extract again with --force`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const v = value as Partial<Calibration> | null;
  if (v === null || typeof v !== 'object' || typeof v.rule !== 'string' || !Number.isInteger(v.images) || !Number.isInteger(v.weightRange)) throw bad('rule, images or weightRange missing');
  if (typeof v.tensors !== 'object' || v.tensors === null) throw bad('no tensors');
  for (const [name, p] of Object.entries(v.tensors)) {
    const ok = Array.isArray(p) && p.length === 2 && Number.isFinite(p[0]) && (p[0] as number) > 0 && Number.isInteger(p[1]) && (p[1] as number) >= 0 && (p[1] as number) <= 255;
    if (!ok) throw bad(`tensor ${name}: expected [scale > 0, zero point 0..255]`);
  }
  return { rule: v.rule, images: v.images!, weightRange: v.weightRange!, tensors: v.tensors };
}
