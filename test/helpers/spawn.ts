/**
 * A child process run to its end without blocking the test worker: spawnSync would stop the worker's
 * event loop for as long as the child runs, and vitest's worker gives up on a call to the main
 * process after 60 s ("Timeout calling onTaskUpdate"), which a long child under load can exceed.
 */
import { type SpawnOptions, spawn } from 'node:child_process';

export interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number | undefined;
}

/** Runs `command` with `args` and resolves with its exit and output (utf8); `timeout` kills it with SIGKILL. */
export function runChild(command: string, args: readonly string[], options: SpawnOptions & { timeout?: number; encoding?: 'utf8' } = {}): Promise<Ran> {
  const { timeout, encoding: _utf8, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = timeout === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', (error) => {
      if (timer) clearTimeout(timer);
      reject(error);
    });
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, pid: child.pid });
    });
  });
}
