/**
 * Whether WebGPU can run here, for `train-head --backend` and `extract --device`, and for the tests.
 *
 * A Vulkan ICD file proves nothing: Debian 12's own Mesa 22.3 installs lavapipe's, yet Dawn refuses
 * that driver. So the answer comes from asking Dawn (the optional `webgpu` package) for an adapter,
 * in a child process: a driver that hangs costs at most the time bound, Dawn's and Mesa's warnings
 * go to the child's stderr instead of the user's (the one that says why becomes the reason), and
 * the answer is kept for the rest of the process.
 *
 * On Linux a GPU is a device node (/dev/dri/renderD*, /dev/nvidia*, WSL's /dev/dxg); auto selection
 * asks Dawn only where one exists, so a machine without a GPU pays nothing and prints nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { firstLine } from './errors.js';

export type DawnAnswer =
  /** Dawn gave an adapter; `software` for a CPU rasterizer (lavapipe, llvmpipe, SwiftShader). */
  | { kind: 'adapter'; description: string; software: boolean }
  /** Dawn ran and found no adapter it can use. */
  | { kind: 'none'; reason: string }
  /** Dawn hung past the time bound, crashed or gave no answer: touching it in-process is unsafe. */
  | { kind: 'failed'; reason: string }
  /** The `webgpu` package is not installed or does not load: Dawn could not be asked. */
  | { kind: 'unavailable'; reason: string };

/** Dawn answers in ~0.1-0.4 s; the bound is for a hung driver and a heavily loaded machine. */
export const DAWN_PROBE_TIMEOUT_MS = 10_000;

/** Linux exposes GPUs as device nodes; elsewhere (Metal, D3D12) assume one may exist. */
export function gpuDeviceNode(): boolean {
  if (process.platform !== 'linux') return true;
  const has = (dir: string, prefix: string): boolean => {
    try {
      return readdirSync(dir).some((name) => name.startsWith(prefix));
    } catch {
      return false;
    }
  };
  return has('/dev/dri', 'renderD') || has('/dev', 'nvidia') || existsSync('/dev/dxg');
}

const IMPORT_FAILED = 3;

// Plain JavaScript, so the child needs neither tsx nor a build; it imports Dawn by URL because its
// working directory is the user's, where `webgpu` does not resolve.
const PROBE_SCRIPT = `
let dawn;
try {
  dawn = await import(process.env.HEADSTART_DAWN_MODULE);
} catch (e) {
  process.stderr.write(String(e?.message ?? e).split('\\n')[0]);
  process.exit(${IMPORT_FAILED});
}
let answer;
try {
  const adapter = await dawn.create([]).requestAdapter({ powerPreference: 'high-performance' });
  const info = adapter?.info ?? {};
  answer = adapter
    ? { found: true, names: [info.vendor, info.architecture, info.device, info.description], fallback: Boolean(adapter.isFallbackAdapter || info.isFallbackAdapter) }
    : { found: false };
} catch (e) {
  answer = { found: false, error: String(e?.message ?? e).split('\\n')[0] };
}
process.stdout.write(JSON.stringify(answer), () => process.exit(0));
`;

export interface AskDawnOptions {
  timeoutMs?: number;
  /** The module to ask (file URL or path); default: the installed `webgpu` package. */
  module?: string;
}

let cached: Promise<DawnAnswer> | undefined;

/** Asks Dawn once per process (the first call's options win); never rejects. */
export function askDawn(opts: AskDawnOptions = {}): Promise<DawnAnswer> {
  cached ??= probeDawn(opts);
  return cached;
}

/** One probe, uncached. */
export async function probeDawn(opts: AskDawnOptions = {}): Promise<DawnAnswer> {
  let module: string;
  try {
    module = opts.module ?? pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch (e) {
    return { kind: 'unavailable', reason: `the optional package "webgpu" is not installed (${firstLine(e)})` };
  }
  if (!/^[a-z]+:/.test(module)) module = pathToFileURL(module).href;
  const timeoutMs = opts.timeoutMs ?? DAWN_PROBE_TIMEOUT_MS;
  const run = await runChild(module, timeoutMs);
  if (run.timedOut) return { kind: 'failed', reason: `Dawn did not answer within ${timeoutMs / 1000} s` };
  if (run.signal) return { kind: 'failed', reason: `Dawn crashed (${run.signal})` };
  if (run.code === IMPORT_FAILED) return { kind: 'unavailable', reason: `the optional package "webgpu" did not load (${run.stderr.trim() || 'no message'})` };
  let answer: { found: boolean; names?: unknown[]; fallback?: boolean; error?: string };
  try {
    answer = JSON.parse(run.stdout) as typeof answer;
  } catch {
    const why = run.code !== 0 ? `exit code ${run.code}: ${lastLine(run.stderr)}` : JSON.stringify(run.stdout.slice(0, 80));
    return { kind: 'failed', reason: `Dawn gave no answer (${why})` };
  }
  if (!answer.found) return { kind: 'none', reason: answer.error ?? dawnReason(run.stderr) ?? 'no usable GPU or driver' };
  const names = (answer.names ?? []).filter((n): n is string => typeof n === 'string' && n.length > 0);
  const description = names.length > 0 ? names.join(' ') : 'unnamed adapter';
  return { kind: 'adapter', description, software: Boolean(answer.fallback) || isSoftwareName(description) };
}

/** Names of CPU rasterizers: slower than the cpu backend, so auto never picks them. */
export function isSoftwareName(description: string): boolean {
  return /swiftshader|llvmpipe|lavapipe/i.test(description);
}

/**
 * Dawn's reason for refusing an adapter, from the child's stderr: Dawn writes
 * `Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.` and a backtrace; Mesa adds lines
 * such as `error: XDG_RUNTIME_DIR is invalid` that say nothing about the adapter.
 */
export function dawnReason(stderr: string): string | undefined {
  const line = /^(?:Warning|Error): (.+)$/m.exec(stderr)?.[1];
  return line?.trim().replace(/\.$/, '');
}

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function runChild(module: string, timeoutMs: number): Promise<ChildRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', PROBE_SCRIPT], {
      env: { ...process.env, HEADSTART_DAWN_MODULE: module },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    // Bounded: a driver stuck in a warning loop must not fill our memory.
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-16_384)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}\nError: ${e.message}`, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .at(-1) ?? 'no message'
  );
}
