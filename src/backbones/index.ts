/**
 * The backbones headstart knows. Generic code imports the registry from here (not registry.ts), so
 * the built-in backbones are registered before anyone asks for one. A new backbone is a folder
 * beside vgg16/ and one line below; a family of backbones named by a parameter (`onnx:FILE`) is a factory.
 */
import { onnxFactory } from './onnx/index.js';
import { registerBackbone, registerBackboneFactory } from './registry.js';
import { resnet18, resnet34, resnet50 } from './resnet/index.js';
import { vgg16 } from './vgg16/index.js';

registerBackbone(vgg16);
registerBackbone(resnet18);
registerBackbone(resnet34);
registerBackbone(resnet50);
registerBackboneFactory(onnxFactory);

/** Files written before headstart recorded a backbone (cache format 1 without the attribute, headstart.json without the field) were made with this one. */
export const UNRECORDED_BACKBONE = vgg16.id;

export {
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
} from './registry.js';
export { defaultWeightsPath, loadBackboneWeights } from './load.js';
export { publishedFiles, publishedMatching, publishedVersion, publishedVersions } from './published.js';
export type * from './types.js';
