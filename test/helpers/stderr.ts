/**
 * Everything that could reach the terminal while `run` goes: process.stderr.write and
 * console.error, and fs.writeSync on descriptor 2, where Emscripten's NODERAWFS sends C's stderr
 * (HDF5's diagnostics). Writes are recorded and dropped; other descriptors go through.
 */
import fs from 'node:fs';
import { vi } from 'vitest';

export async function stderrDuring(run: () => Promise<unknown>): Promise<string> {
  const said: string[] = [];
  const writeSync = fs.writeSync;
  const spies = [
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      said.push(String(chunk));
      return true;
    }),
    vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void said.push(parts.join(' '))),
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]) => {
      if (fd !== 2) return (writeSync as (...a: unknown[]) => number)(fd, data, ...rest);
      if (typeof data === 'string') {
        said.push(data);
        return Buffer.byteLength(data);
      }
      // Emscripten passes its whole heap with an offset and a length.
      const offset = (rest[0] as number | undefined) ?? 0;
      const length = (rest[1] as number | undefined) ?? data.byteLength - offset;
      said.push(Buffer.from(data.buffer, data.byteOffset + offset, length).toString());
      return length;
    }) as typeof fs.writeSync),
  ];
  try {
    await run();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return said.join('');
}
