/**
 * The tensorflow head backend: @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, optional and
 * not a dependency. CAVEAT: tfjs-node pulls in its own @tensorflow/tfjs (and so a tfjs-core). npm
 * dedupes it into ours only when the versions agree; otherwise there are two tfjs-core copies. They
 * share one engine and kernel registry through globalThis (`_tfengine`, `kernelRegistry`) so the
 * 'tensorflow' backend is usually still visible to ours, but kernels and tensor classes then come
 * from different versions. Install the tfjs-node matching @tensorflow/tfjs-core (4.22.x). If ours
 * cannot see the backend after the import, that is a DeviceError.
 *
 * TensorFlow's own kernels are fused already; it reads asynchronously and updates by new tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DeviceError, firstLine } from '../../../errors.js';
import { TFJS_OPS_ONLY } from '../tfjs-ops.js';
import type { BackendContext, HeadBackend } from '../types.js';

export const TENSORFLOW_INSTALL_MESSAGE = 'install @tensorflow/tfjs-node (or -gpu) to use --backend tensorflow';

const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

interface TfjsNodeProbe {
  loaded?: { specifier: string };
  /** Set when a package exists but failed to load (as opposed to not being installed). */
  error?: string;
}

function isNotFound(e: unknown, specifier: string): boolean {
  const code = (e as { code?: string } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message.includes(specifier);
}

async function findTfjsNode(importModule: (specifier: string) => Promise<unknown>): Promise<TfjsNodeProbe> {
  let error: string | undefined;
  for (const specifier of TFJS_NODE_PACKAGES) {
    try {
      await importModule(specifier);
      return { loaded: { specifier } };
    } catch (e) {
      if (!isNotFound(e, specifier)) error ??= firstLine(e);
    }
  }
  return { error };
}

async function start(ctx: BackendContext, probe: TfjsNodeProbe): Promise<string> {
  if (!probe.loaded) {
    throw new DeviceError(probe.error ? `@tensorflow/tfjs-node failed to load: ${probe.error}` : TENSORFLOW_INSTALL_MESSAGE);
  }
  if (!tf.findBackendFactory('tensorflow')) {
    throw new DeviceError(`${probe.loaded.specifier} loaded but registered no 'tensorflow' backend with @tensorflow/tfjs-core ${tf.version_core}; install the tfjs-node version matching it`);
  }
  if (!(await tf.setBackend('tensorflow'))) throw new DeviceError(`${probe.loaded.specifier} loaded but its 'tensorflow' backend failed to start`);
  const detail = `tensorflow (${probe.loaded.specifier})`;
  ctx.note(`backend: ${detail}`);
  return detail;
}

export const tensorflowBackend: HeadBackend<'tensorflow'> = {
  name: 'tensorflow',
  priority: 30,
  setup: async (ctx) => start(ctx, await findTfjsNode(ctx.importModule)),
  async trySetup(ctx) {
    const probe = await findTfjsNode(ctx.importModule);
    if (probe.loaded) return start(ctx, probe);
    if (probe.error) ctx.note(`backend: @tensorflow/tfjs-node is installed but failed to load (${probe.error}); not using it`);
    return undefined;
  },
  // tfjs-node has no way to unload its native library (teardown does nothing), and its ops are tfjs's own.
  ...TFJS_OPS_ONLY,
};
