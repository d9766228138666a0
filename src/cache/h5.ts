/**
 * h5wasm glue. The Node build of h5wasm reads and writes real paths (Emscripten's NODERAWFS), so
 * files are opened in place. HDF5 prints a diagnostic stack on stderr whenever one of its calls
 * fails, and h5wasm does not always throw then, so everything here checks before it asks: that
 * the file exists and is HDF5, that a group or attribute is there before reading it. What no check
 * can foresee (a damaged body) is read through `readQuietly`, which keeps those diagnostics off
 * the user's terminal and turns them into one line.
 */
import fs, { closeSync, openSync, readSync, statSync } from 'node:fs';
import h5wasm from 'h5wasm/node';
import type { Dataset, File, Group } from 'h5wasm/node';
import { InputError, MismatchError } from '../errors.js';
import { CHECKSUM_ATTRS, EXTRACT_AGAIN, FORMAT_VERSION, SPLITS, recordedBackbone } from './format.js';
import type { CacheAttrs, FeatureLayout } from './types.js';

export type { Dataset, File, Group };

export async function h5(): Promise<typeof h5wasm> {
  await h5wasm.ready;
  return h5wasm;
}

const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** HDF5 puts its signature at 0, 512, 1024, 2048, … (after an optional user block). */
export function isHdf5(path: string): boolean {
  return superblockOffset(path) >= 0;
}

function superblockOffset(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const buf = Buffer.alloc(8);
    for (let offset = 0; offset + 8 <= size && offset <= 1 << 20; offset = offset === 0 ? 512 : offset * 2) {
      if (readSync(fd, buf, 0, 8, offset) === 8 && buf.equals(SIGNATURE)) return offset;
    }
    return -1;
  } finally {
    closeSync(fd);
  }
}

/**
 * True when a version 2 or 3 superblock (what h5wasm and recent h5py write) records an end of file
 * beyond the file's size: a cut-off copy. Checked before HDF5 sees the file, because HDF5 prints a
 * page of diagnostics on stderr when it fails to open one. Older superblocks are left to HDF5.
 */
function isCutOff(path: string, offset: number): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(12 + 3 * 8);
    if (readSync(fd, head, 0, head.length, offset) < 12) return true;
    const version = head[8]!;
    const width = head[9]!;
    if (version < 2 || (width !== 4 && width !== 8)) return false;
    const at = (i: number): number => (width === 8 ? Number(head.readBigUInt64LE(12 + i * 8)) : head.readUInt32LE(12 + i * 4));
    return at(0) + at(2) > statSync(path).size;
  } finally {
    closeSync(fd);
  }
}

function damaged(path: string, diagnostics = ''): InputError {
  const error = new InputError(
    `Feature cache ${path} is damaged or truncated (HDF5 cannot open it); expected a complete cache written by headstart extract, so extract it again with --force`,
    diagnostics === '' ? {} : { cause: new Error(diagnostics) },
  );
  // The CLI prints the stack (not the cause) under --verbose: that is where HDF5's own account belongs.
  if (diagnostics !== '') error.stack = `${error.stack}\nHDF5 reported:\n${diagnostics.trimEnd()}`;
  return error;
}

type WriteSync = (fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]) => number;
type FsCall = (...args: unknown[]) => unknown;

/** The fs calls Emscripten's NODERAWFS makes for HDF5's file I/O, watched for the errno that failed them. */
const WATCHED = ['openSync', 'writeSync', 'ftruncateSync', 'fsyncSync', 'closeSync'] as const;

interface Held<T> {
  ok: boolean;
  value?: T;
  error?: unknown;
  /** What HDF5 and Emscripten printed meanwhile. */
  said: string;
  /** Error codes (ENOSPC, EIO, …) of file-system calls that failed meanwhile. */
  codes: string[];
}

/**
 * Runs synchronous h5wasm calls while holding back what HDF5 and Emscripten print, and noting the
 * error code of every file-system call that fails underneath. HDF5's automatic error printing
 * writes each failure's stack to C's stderr, which NODERAWFS sends to `fs.writeSync(2, …)`;
 * Emscripten's own warnings and aborts go through `console.error` (bound when h5wasm loaded, so
 * only `process.stderr.write` still reaches them). h5wasm offers no clean switch: H5Eset_auto2 is
 * not exported, and its `activate_throwing_error_handler` throws out of the middle of HDF5's C
 * code (leaking the handler's temporary file and the wasm stack frames it skips). So the sinks are
 * replaced for exactly the length of the call (synchronous, so nothing else runs meanwhile) and
 * restored after.
 */
function holdOutput<T>(call: () => T): Held<T> {
  const said: string[] = [];
  const codes: string[] = [];
  const real = Object.fromEntries(WATCHED.map((name) => [name, (fs as unknown as Record<string, FsCall>)[name]!])) as Record<(typeof WATCHED)[number], FsCall>;
  const stderrWrite = process.stderr.write;
  const held = (data: string | NodeJS.ArrayBufferView, rest: unknown[]): number => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const offset = typeof rest[0] === 'number' ? rest[0] : 0;
    const length = typeof rest[1] === 'number' ? rest[1] : bytes.length - offset;
    said.push(typeof data === 'string' ? data : bytes.subarray(offset, offset + length).toString('utf8'));
    return typeof data === 'string' ? bytes.length : length;
  };
  const watched =
    (name: (typeof WATCHED)[number]): FsCall =>
    (...args: unknown[]) => {
      try {
        return real[name].apply(fs, args);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException | undefined)?.code;
        if (typeof code === 'string') codes.push(code);
        throw error;
      }
    };
  const quietWriteSync: WriteSync = (fd, data, ...rest) => (fd === 2 ? held(data, rest) : (watched('writeSync')(fd, data, ...rest) as number));
  const target = fs as unknown as Record<string, FsCall>;
  for (const name of WATCHED) target[name] = name === 'writeSync' ? (quietWriteSync as FsCall) : watched(name);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    said.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { ok: true, value: call(), said: said.join(''), codes };
  } catch (error) {
    return { ok: false, error, said: said.join(''), codes };
  } finally {
    for (const name of WATCHED) target[name] = real[name];
    process.stderr.write = stderrWrite;
  }
}

/**
 * Runs synchronous h5wasm calls that read the cache at `path` with HDF5's diagnostics held back
 * (see holdOutput). Anything HDF5 reported, or a wasm abort, means the file is damaged: one
 * InputError, with HDF5's lines kept for --verbose.
 */
export function readQuietly<T>(path: string, call: () => T): T {
  const r = holdOutput(call);
  if (!r.ok) {
    if (r.said.length > 0 || r.error instanceof WebAssembly.RuntimeError) throw damaged(path, r.said);
    throw r.error;
  }
  // h5wasm does not always throw when HDF5 fails: it may hand back a negative id or made-up values.
  if (r.said.length > 0) throw damaged(path, r.said);
  return r.value as T;
}

/**
 * Runs synchronous h5wasm calls that write `path`, with HDF5's diagnostics held back. A failure
 * underneath (a full disk: HDF5 then prints pages and h5wasm may not throw) is thrown as an error
 * carrying the file system's code (ENOSPC, …), so the caller can say it in one line; HDF5's own
 * account goes on the error's stack, which the CLI prints only under --verbose.
 */
export function writeQuietly<T>(path: string, call: () => T): T {
  const r = holdOutput(call);
  // HDF5 probes for files that need not exist (ENOENT, EEXIST) and copes when they do not.
  const codes = r.codes.filter((c) => c !== 'ENOENT' && c !== 'EEXIST');
  if (r.ok && r.said.length === 0 && codes.length === 0) return r.value as T;
  const code = codes[0];
  const reason = code ?? (r.error instanceof Error ? r.error.message : 'HDF5 reported an error');
  const error = Object.assign(new Error(`HDF5 could not write ${path}: ${reason}`, r.error === undefined ? undefined : { cause: r.error }), code === undefined ? {} : { code });
  if (r.said !== '') error.stack = `${error.stack}\nHDF5 reported:\n${r.said.trimEnd()}`;
  throw error;
}

/** Closes a file that is only read; a failure here changes nothing the caller has, so it is dropped. */
export function closeQuietly(path: string, file: File): void {
  try {
    readQuietly(path, () => file.close());
  } catch {
    // A read-only file has nothing to lose on close.
  }
}

/** Opens an existing file read-only after checking it is one; the caller has checked it exists. */
export async function openForReading(path: string): Promise<File> {
  const lib = await h5();
  if (!statSync(path).isFile()) throw new InputError(`Feature cache ${path} is a folder; expected an HDF5 file (.h5)`);
  const offset = superblockOffset(path);
  if (offset < 0) throw new InputError(`Feature cache ${path} is not an HDF5 file; expected a cache written by headstart extract`);
  if (isCutOff(path, offset)) throw damaged(path);
  // The signature is there but HDF5 cannot open the rest (a damaged file): h5wasm then hands back
  // a File whose id is negative instead of throwing, and fails later on any read.
  const file = readQuietly(path, () => new lib.File(path, 'r'));
  if (file.file_id < 0n) throw damaged(path);
  return file;
}

/**
 * A split group's recorded digests (CHECKSUM_ATTRS), where it has both. Caches written before they
 * existed lack them; the writer adds them when it next rewrites the file.
 */
export function recordedDigests(group: Group): { features: string; labels: string } | undefined {
  const features = attrValue(group, CHECKSUM_ATTRS.features);
  const labels = attrValue(group, CHECKSUM_ATTRS.labels);
  return typeof features === 'string' && typeof labels === 'string' ? { features, labels } : undefined;
}

export function hasChild(group: Group, name: string): boolean {
  return group.keys().includes(name);
}

function attrNames(group: Group): string[] {
  return Object.keys(group.attrs);
}

/** An attribute's value, or undefined when the object has none of that name. */
export function attrValue(group: Group, name: string): unknown {
  return attrNames(group).includes(name) ? group.attrs[name]!.value : undefined;
}

export function toNumbers(value: unknown): number[] | undefined {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>, Number);
  if (Array.isArray(value)) return value.map(Number);
  if (typeof value === 'number' || typeof value === 'bigint') return [Number(value)];
  return undefined;
}

function toStrings(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  return undefined;
}

export function writeRootAttrs(file: File, attrs: CacheAttrs): void {
  const put = (name: string, value: Parameters<File['create_attribute']>[1], dtype?: string): void => {
    if (attrNames(file).includes(name)) file.delete_attribute(name);
    file.create_attribute(name, value, null, dtype ?? null);
  };
  put('format_version', attrs.formatVersion, '<i4');
  put('tool_version', attrs.toolVersion);
  put('backbone', recordedBackbone(attrs));
  put('weights_id', attrs.weightsId);
  put('image_size', attrs.imageSize, '<i4');
  put('layout', attrs.layout);
  put('mean', Float64Array.from(attrs.mean));
  put('std', Float64Array.from(attrs.std));
  put('classes', attrs.classes.length > 0 ? attrs.classes : ['']);
  put('num_classes', attrs.classes.length, '<i4');
  put('data_name', attrs.dataName);
  put('data_source', attrs.dataSource);
  put('split_rule', attrs.splitRule);
  put('feature_shape', Int32Array.from(attrs.featureShape));
  put('classifier_input', attrs.classifierInput);
  // Written for int8 only: a float32 cache keeps exactly the attributes it always had.
  if (attrs.precision !== undefined && attrs.precision !== 'fp32') put('precision', attrs.precision);
  if (attrs.calibrationRule !== undefined) put('calibration_rule', attrs.calibrationRule);
  if (attrs.calibration !== undefined) put('calibration', attrs.calibration);
  for (const split of SPLITS) {
    const count = attrs.counts[split];
    if (count !== undefined) put(`${split}_count`, count, '<i4');
  }
}

/** Reads and checks the root attributes; a file without them is not a headstart cache. */
export function readRootAttrs(file: File, path: string): CacheAttrs {
  const version = toNumbers(attrValue(file, 'format_version'))?.[0];
  if (version === undefined) throw new InputError(`${path} is an HDF5 file but not a headstart feature cache (no format_version attribute)`);
  if (version > FORMAT_VERSION) throw new MismatchError(`Feature cache ${path} has format version ${version}; this headstart reads version ${FORMAT_VERSION}, so upgrade headstart or extract again`);
  const text = (name: string): string => {
    const value = attrValue(file, name);
    if (typeof value !== 'string') throw new InputError(`Feature cache ${path} lacks the ${name} attribute; extract it again with --force`);
    return value;
  };
  const numbers = (name: string): number[] => {
    const value = toNumbers(attrValue(file, name));
    if (value === undefined) throw new InputError(`Feature cache ${path} lacks the ${name} attribute; extract it again with --force`);
    return value;
  };
  const layout = text('layout');
  if (layout !== 'map' && layout !== 'pooled') throw new InputError(`Expected layout map or pooled in feature cache ${path} but received ${JSON.stringify(layout)}`);
  const precision = attrValue(file, 'precision') === undefined ? undefined : text('precision');
  if (precision !== undefined && precision !== 'fp32' && precision !== 'int8')
    throw new InputError(`Expected precision fp32 or int8 in feature cache ${path} but received ${JSON.stringify(precision)}`);
  const optionalText = (name: string): string | undefined => (attrValue(file, name) === undefined ? undefined : text(name));
  const calibrationRule = optionalText('calibration_rule');
  const calibration = optionalText('calibration');
  const numClasses = numbers('num_classes')[0]!;
  const classes = readClasses(file, path, numClasses);
  const counts: CacheAttrs['counts'] = {};
  for (const split of SPLITS) {
    const count = toNumbers(attrValue(file, `${split}_count`))?.[0];
    if (count !== undefined) counts[split] = count;
  }
  return {
    formatVersion: version,
    toolVersion: text('tool_version'),
    // Format-1 files from before backbones were recorded have none: recordedBackbone says whose they are.
    backbone: recordedBackbone({ backbone: attrValue(file, 'backbone') === undefined ? undefined : text('backbone') }),
    weightsId: text('weights_id'),
    imageSize: numbers('image_size')[0]!,
    layout: layout as FeatureLayout,
    mean: numbers('mean'),
    std: numbers('std'),
    classes,
    dataName: text('data_name'),
    dataSource: text('data_source'),
    splitRule: text('split_rule'),
    featureShape: numbers('feature_shape'),
    classifierInput: text('classifier_input'),
    counts,
    ...(precision === undefined ? {} : { precision }),
    ...(calibrationRule === undefined ? {} : { calibrationRule }),
    ...(calibration === undefined ? {} : { calibration }),
  };
}

/** The class names, checked against num_classes: labels are uint8, so at most 256 classes, each named once. */
function readClasses(file: File, path: string, numClasses: number): string[] {
  const bad = (what: string): InputError => new InputError(`Feature cache ${path} ${what}; ${EXTRACT_AGAIN}`);
  if (!Number.isSafeInteger(numClasses) || numClasses < 0 || numClasses > 256) throw bad(`has num_classes ${numClasses}; expected 0 to 256 (labels are uint8)`);
  const names = toStrings(attrValue(file, 'classes'));
  if (names === undefined) throw bad('lacks the classes attribute (a list of names)');
  // The writer stores [''] for no classes: HDF5 has no empty string array.
  const classes = numClasses === 0 && names.length === 1 && names[0] === '' ? [] : names;
  if (classes.length !== numClasses) throw bad(`has num_classes ${numClasses} but ${classes.length} names in its classes attribute`);
  const seen = new Set<string>();
  for (const name of classes) {
    if (seen.has(name)) throw bad(`names class ${JSON.stringify(name)} twice in its classes attribute`);
    seen.add(name);
  }
  return classes;
}
