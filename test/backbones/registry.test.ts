import { afterEach, describe, expect, it } from 'vitest';
import {
  UNRECORDED_BACKBONE,
  backboneFactoryUsages,
  backboneFileTag,
  backboneIds,
  defaultBackbone,
  findBackbone,
  getBackbone,
  isBackboneId,
  listBackbones,
  registerBackbone,
  registerBackboneFactory,
  unregisterBackbone,
  unregisterBackboneFactory,
} from '../../src/backbones/index.js';
import type { BackboneFactory } from '../../src/backbones/types.js';
import { InputError, UsageError } from '../../src/errors.js';
import { parseCommandLine } from '../../src/cli.js';
import { thrownSync } from '../helpers/errors.js';
import { toy } from './toy.js';

afterEach(() => {
  unregisterBackbone(toy.id);
  unregisterBackboneFactory('toys');
});

/** A factory of toy backbones `toys:<hidden>`, as a contributor would register one. */
const toys: BackboneFactory = {
  prefix: 'toys',
  usage: 'toys:HIDDEN',
  make: (arg, where, params) => {
    if (!/^\d+$/.test(arg)) throw new InputError(`Expected a width for ${where} but received ${JSON.stringify(arg)}`);
    return { ...toy, id: `toys:${arg}${params.output ? `?output=${params.output}` : ''}`, head: { ...toy.head, hidden: Number(arg) } };
  },
  fileTag: (arg) => `toys.${arg.replace(/\W/g, '_')}`,
};

describe('the backbone registry', () => {
  it('lists the built-in backbones, vgg16 first and the default, which is also what unrecorded files were made with', () => {
    expect(backboneIds()).toEqual(['vgg16', 'resnet18', 'resnet34', 'resnet50']);
    expect(listBackbones().map((b) => b.name)).toEqual(['VGG16', 'ResNet-18', 'ResNet-34', 'ResNet-50']);
    expect(defaultBackbone().id).toBe('vgg16');
    expect(UNRECORDED_BACKBONE).toBe('vgg16');
    expect(getBackbone('vgg16').trunk.minImageSize).toBe(32);
  });

  it('an unknown id is one InputError line naming where it came from and the registered ids', () => {
    const err = thrownSync(() => getBackbone('resnet101', '--backbone'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('Expected one of the registered backbones (vgg16, resnet18, resnet34, resnet50, onnx:FILE) for --backbone but received "resnet101"');
    expect(findBackbone('resnet101')).toBeUndefined();
  });

  it('registers another backbone by id, after the default, and refuses an id twice or one unfit for file names', () => {
    registerBackbone(toy);
    expect(backboneIds()).toEqual(['vgg16', 'resnet18', 'resnet34', 'resnet50', 'toy']);
    expect(getBackbone('toy')).toBe(toy);
    expect(defaultBackbone().id).toBe('vgg16');
    expect(() => registerBackbone(toy)).toThrow('backbone toy is already registered');
    expect(() => registerBackbone({ ...toy, id: 'my-net' })).toThrow(RangeError);
    unregisterBackbone('toy');
    expect(backboneIds()).toEqual(['vgg16', 'resnet18', 'resnet34', 'resnet50']);
  });

  it('--backbone offers the registered ids, a later one too; another value is a UsageError listing them', () => {
    expect(parseCommandLine(['extract']).args.options['backbone']).toBe('vgg16');
    const err = thrownSync(() => parseCommandLine(['extract', '--backbone', 'toy']));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected one of vgg16|resnet18|resnet34|resnet50|onnx:FILE for --backbone but received "toy"');
    registerBackbone(toy);
    expect(parseCommandLine(['extract', '--backbone', 'toy']).args.options['backbone']).toBe('toy');
  });

  it('resolves parameterised ids through a registered factory, with its parameters; file names use its tag', () => {
    expect(backboneFactoryUsages()).toEqual(['onnx:FILE']);
    expect(isBackboneId('toys:16')).toBe(false);
    registerBackboneFactory(toys);
    expect(() => registerBackboneFactory(toys)).toThrow('backbone factory toys is already registered');
    expect(isBackboneId('toys:16')).toBe(true);
    expect(getBackbone('toys:16').head.hidden).toBe(16);
    expect(getBackbone('toys:16', '--backbone', { output: 'x' }).id).toBe('toys:16?output=x');
    expect(backboneFileTag('toys:16?output=x')).toBe('toys.16_output_x');
    expect(backboneFileTag('vgg16')).toBe('vgg16');
    const err = thrownSync(() => getBackbone('toys:wide', '--backbone'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('Expected a width for --backbone but received "wide"');
    // findBackbone answers undefined where the factory refuses (a cache recording a model file that is gone).
    expect(findBackbone('toys:wide')).toBeUndefined();
    expect(findBackbone('nothing:16')).toBeUndefined();
  });

  it('refuses parameters for a backbone that takes none, instead of ignoring them', () => {
    const err = thrownSync(() => getBackbone('resnet50', '--backbone', { output: 'x', mean: [0.5, 0.5, 0.5] }));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected no output or mean (ResNet-50 takes none; a parameterised backbone such as onnx:FILE does) for --backbone resnet50 but received "output x, mean 0.5,0.5,0.5"');
    expect(getBackbone('resnet50', '--backbone', { output: undefined }).id).toBe('resnet50');
  });
});
