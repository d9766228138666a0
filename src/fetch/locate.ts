/**
 * Where files that are already on disk live: our models/ and data/ folders, and PyTorch's own
 * hub cache, so a machine that ran torchvision once never downloads a backbone's weights again.
 */
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Backbone, PublishedWeights } from '../backbones/types.js';
import { CIFAR10_DIR_NAME, CIFAR10_FILE_NAME, CIFAR10_SPLIT_FILES } from './sources.js';

type Env = Record<string, string | undefined>;

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function expandHome(path: string, env: Env): string {
  const home = env.HOME || homedir();
  return path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : path;
}

/**
 * torch.hub's `_get_torch_home()`: `$TORCH_HOME`, else `$XDG_CACHE_HOME/torch`, else
 * `~/.cache/torch`, with `~` expanded. An empty variable counts as unset (torch would use '').
 */
export function torchHome(env: Env): string {
  if (env.TORCH_HOME) return expandHome(env.TORCH_HOME, env);
  return join(expandHome(env.XDG_CACHE_HOME || '~/.cache', env), 'torch');
}

export interface FoundWeights {
  path: string;
  source: 'models' | 'torch-cache';
}

/** Like locateWeights, and says which of the two places it came from. `opts.file` looks for another published file than the default (`publishedVersion`). */
export async function findWeights(backbone: Backbone, opts: { modelsDir: string; env: Env; file?: PublishedWeights }): Promise<FoundWeights | undefined> {
  const fileName = (opts.file ?? backbone.published)?.fileName;
  if (fileName === undefined) return undefined;
  const own = join(opts.modelsDir, fileName);
  if (await isFile(own)) return { path: own, source: 'models' };
  const cached = join(torchHome(opts.env), 'hub', 'checkpoints', fileName);
  if (await isFile(cached)) return { path: cached, source: 'torch-cache' };
  return undefined;
}

/** The backbone's published file in `modelsDir` (`models/<file name>`), else PyTorch's cached copy, else undefined. */
export async function locateWeights(backbone: Backbone, opts: { modelsDir: string; env: Env; file?: PublishedWeights }): Promise<string | undefined> {
  return (await findWeights(backbone, opts))?.path;
}

/** The six files of the unpacked binary CIFAR-10; a folder missing one is an interrupted unpack. */
export const CIFAR10_BATCH_FILES: readonly string[] = [...CIFAR10_SPLIT_FILES.train, ...CIFAR10_SPLIT_FILES.test];

/**
 * The unpacked `<dataDir>/cifar-10-batches-bin/` when it holds all six batch files (cheaper to
 * read), else `<dataDir>/cifar-10-binary.tar.gz` if present, else undefined.
 */
export async function locateCifar10(dataDir: string): Promise<string | undefined> {
  const dir = join(dataDir, CIFAR10_DIR_NAME);
  if (await isDirectory(dir)) {
    const present = await Promise.all(CIFAR10_BATCH_FILES.map((f) => isFile(join(dir, f))));
    if (present.every(Boolean)) return dir;
  }
  const archive = join(dataDir, CIFAR10_FILE_NAME);
  if (await isFile(archive)) return archive;
  return undefined;
}
