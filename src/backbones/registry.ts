/**
 * Backbones by id, in the manner of transformers.js's per-task model table: generic code asks for
 * `getBackbone(id)` and never imports a backbone itself. src/backbones/index.ts registers the
 * built-in ones; a library user (or a test) may register more.
 */
import { InputError, UsageError, expected } from '../errors.js';
import type { Backbone, BackboneFactory, BackboneParams } from './types.js';

const backbones = new Map<string, Backbone>();
const factories = new Map<string, BackboneFactory>();
let defaultId: string | undefined;

/** Adds a backbone; the first one registered is the default. An id already taken is a programming error. */
export function registerBackbone<W extends object>(backbone: Backbone<W>): void {
  if (!/^[a-z0-9][a-z0-9_.]*$/.test(backbone.id))
    throw new RangeError(`backbone id ${JSON.stringify(backbone.id)}: expected lower-case letters, digits, '_' and '.' (it goes into file names, where '-' separates fields)`);
  if (backbones.has(backbone.id)) throw new RangeError(`backbone ${backbone.id} is already registered`);
  backbones.set(backbone.id, backbone as unknown as Backbone);
  defaultId ??= backbone.id;
}

/** Adds a maker of parameterised backbones: ids `<prefix>:<arg>` resolve through it. */
export function registerBackboneFactory(factory: BackboneFactory): void {
  if (!/^[a-z0-9][a-z0-9_.]*$/.test(factory.prefix)) throw new RangeError(`backbone factory prefix ${JSON.stringify(factory.prefix)}: expected lower-case letters, digits, '_' and '.'`);
  if (factories.has(factory.prefix)) throw new RangeError(`backbone factory ${factory.prefix} is already registered`);
  factories.set(factory.prefix, factory);
}

export function unregisterBackboneFactory(prefix: string): void {
  factories.delete(prefix);
}

/** How the factories' ids are written, for help and messages: `onnx:FILE`. */
export function backboneFactoryUsages(): string[] {
  return [...factories.values()].map((f) => f.usage);
}

/** Whether `id` is a registered backbone's or of the form a registered factory makes (not whether its file is there). */
export function isBackboneId(id: string): boolean {
  return backbones.has(id) || parameterised(id) !== undefined;
}

/** The factory and argument of a parameterised id (`onnx:model.onnx`), else undefined. */
function parameterised(id: string): { factory: BackboneFactory; arg: string } | undefined {
  const colon = id.indexOf(':');
  if (colon < 0) return undefined;
  const factory = factories.get(id.slice(0, colon));
  return factory && { factory, arg: id.slice(colon + 1) };
}

/** Removes a backbone (tests that register one of their own). */
export function unregisterBackbone(id: string): void {
  backbones.delete(id);
  if (defaultId === id) defaultId = backbones.keys().next().value;
}

/** The ids, in registration order. */
export function backboneIds(): string[] {
  return [...backbones.keys()];
}

export function listBackbones(): Backbone[] {
  return [...backbones.values()];
}

/** The backbone of `id`, or undefined when no registered one or factory makes it (a parameterised one whose file is gone). */
export function findBackbone(id: string): Backbone | undefined {
  const found = backbones.get(id);
  if (found !== undefined) return found;
  const p = parameterised(id);
  if (p === undefined) return undefined;
  try {
    return p.factory.make(p.arg, 'the backbone', {});
  } catch (error) {
    if (error instanceof InputError) return undefined;
    throw error;
  }
}

/**
 * The backbone of `id`; InputError naming `where` (an option, a file) and the registered ids otherwise.
 * A parameterised id (`onnx:FILE`) is made by its factory with `params`.
 */
export function getBackbone(id: string, where = 'the backbone', params: BackboneParams = {}): Backbone {
  const found = backbones.get(id);
  const given = Object.entries(params).filter(([, v]) => v !== undefined);
  if (found !== undefined && given.length > 0) {
    const shown = given.map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : v}`).join(', ');
    throw new UsageError(
      expected(
        `no ${given.map(([k]) => k).join(' or ')} (${found.name} takes none; a parameterised backbone such as ${backboneFactoryUsages().join(', ') || 'prefix:ARG'} does)`,
        `${where} ${id}`,
        shown,
      ),
    );
  }
  if (found !== undefined) return found;
  const p = parameterised(id);
  if (p !== undefined) return p.factory.make(p.arg, where, params);
  const known = [...backboneIds(), ...backboneFactoryUsages()];
  throw new InputError(expected(`one of the registered backbones (${known.join(', ') || 'none'})`, where, id));
}

/**
 * How file names (`<data>-<tag>-<size>.h5`, stored models) spell a backbone: its id, or for a
 * parameterised one its factory's tag (an id such as `onnx:dir/m.onnx` has characters a file name cannot).
 */
export function backboneFileTag(id: string): string {
  if (backbones.has(id)) return id;
  const p = parameterised(id);
  return p ? p.factory.fileTag(p.arg) : id.replace(/[^a-z0-9_.]+/gi, '_');
}

/** The backbone runs use when none is named (and that files without a `backbone` record were made with). */
export function defaultBackbone(): Backbone {
  if (defaultId === undefined) throw new Error('no backbone is registered');
  return backbones.get(defaultId)!;
}
