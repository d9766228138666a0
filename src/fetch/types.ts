/** Public types of downloads and `headstart fetch`; the code lives in download.ts and run.ts. */

/** A registered backbone's id (its published weights) or `cifar10`. */
export type KnownFileId = string;

export interface KnownFile {
  id: KnownFileId;
  /** A backbone's weights (kept in models/, also looked for in PyTorch's cache) or a data set (in data/). */
  kind: 'weights' | 'data';
  /** What the file is, for messages: `<backbone name> weights`, `CIFAR-10 (binary version)`. */
  what: string;
  /** Name on disk; a torchvision checkpoint's name is also what torch.hub uses in its cache. */
  fileName: string;
  url: string;
  /**
   * Hex prefix the file's SHA-256 must start with. torchvision names its checkpoints
   * `<name>-<first 8 hex digits of sha256>.pth` and torch.hub checks exactly that prefix, so the
   * prefix is all the name promises; we check the same and record the full digest in a sidecar.
   */
  sha256Prefix?: string;
  /** Full MD5, where the publisher gives one. */
  md5?: string;
  /** Exact size in bytes, where the publisher gives it. */
  bytes?: number;
}

export type SourceTable = Record<KnownFileId, KnownFile>;

export interface DownloadOptions {
  url: string;
  /** Final path; the bytes go to `<dest>.part` first and are renamed only once verified. */
  dest: string;
  /** Full SHA-256 in hex, or a hex prefix of it (torch.hub checks only the prefix in the name). */
  sha256?: string;
  /** Full MD5 in hex. */
  md5?: string;
  expectedBytes?: number;
  /** Bytes so far (including a resumed part) and the total (0 when the server does not say). */
  onProgress?: (done: number, total: number) => void;
  fetchImpl?: typeof fetch;
  signal?: AbortSignal;
  /**
   * What to do by hand when the host cannot be reached, appended to the offline message, e.g.
   * `download <file> by hand into models/`.
   */
  offlineHint?: string;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  /** True when bytes of an earlier, interrupted download were kept. */
  resumed: boolean;
  /** Full digests of the final file, computed while it streamed. */
  sha256: string;
  md5: string;
}

/** Where `headstart fetch` found or put the file. */
export type FetchSource = 'models' | 'torch-cache' | 'data-dir' | 'download';

/** The `--json` output of `headstart fetch`. */
export interface FetchResultData {
  what: KnownFileId;
  path: string;
  source: FetchSource;
  bytes: number;
  /** Known when headstart downloaded the file (and, for weights, from its `.sha256` sidecar). */
  sha256?: string;
  md5?: string;
  /** For `torch-cache`: the file in PyTorch's cache that `path` links to. */
  linkedTo?: string;
  resumed?: boolean;
}
