/**
 * Backbones by id, in the manner of transformers.js's per-task model table: generic code asks for
 * `getBackbone(id)` and never imports a backbone itself. src/backbones/index.ts registers the
 * built-in ones; a library user (or a test) may register more.
 */
import { InputError, expected } from '../errors.js';
import type { Backbone } from './types.js';

const backbones = new Map<string, Backbone>();
let defaultId: string | undefined;

/** Adds a backbone; the first one registered is the default. An id already taken is a programming error. */
export function registerBackbone<W extends object>(backbone: Backbone<W>): void {
  if (!/^[a-z0-9][a-z0-9_.]*$/.test(backbone.id))
    throw new RangeError(`backbone id ${JSON.stringify(backbone.id)}: expected lower-case letters, digits, '_' and '.' (it goes into file names, where '-' separates fields)`);
  if (backbones.has(backbone.id)) throw new RangeError(`backbone ${backbone.id} is already registered`);
  backbones.set(backbone.id, backbone as unknown as Backbone);
  defaultId ??= backbone.id;
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

export function findBackbone(id: string): Backbone | undefined {
  return backbones.get(id);
}

/** The backbone of `id`; InputError naming `where` (an option, a file) and the registered ids otherwise. */
export function getBackbone(id: string, where = 'the backbone'): Backbone {
  const found = backbones.get(id);
  if (found === undefined) throw new InputError(expected(`one of the registered backbones (${backboneIds().join(', ') || 'none'})`, where, id));
  return found;
}

/** The backbone runs use when none is named (and that files without a `backbone` record were made with). */
export function defaultBackbone(): Backbone {
  if (defaultId === undefined) throw new Error('no backbone is registered');
  return backbones.get(defaultId)!;
}
