/**
 * The integer instruction sets the CPU offers, read from /proc/cpuinfo's flags (lscpu's source).
 * ONNX Runtime's MLAS picks its int8 GEMM by them (AMX, then AVX-512 VNNI, AVX-VNNI, AVX2's
 * vpmaddubsw); it does not say which, so benches and notes name the best the flags allow.
 */
import { readFileSync } from 'node:fs';

export interface CpuIsa {
  flags: string[];
  /** The int8 path MLAS would take: 'amx', 'avx512-vnni', 'avx-vnni', 'avx2', 'neon' or 'unknown'. */
  int8: string;
  summary: string;
}

const WATCHED = ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8', 'amx_bf16'];

export function cpuIsa(cpuinfo?: string): CpuIsa {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = '';
    }
  }
  const line = /^(flags|Features)\s*:(.*)$/m.exec(text);
  const all = new Set((line?.[2] ?? '').trim().split(/\s+/));
  const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? 'unknown CPU';
  const flags = WATCHED.filter((f) => all.has(f));
  const int8 = all.has('amx_int8') ? 'amx' : all.has('avx512_vnni') ? 'avx512-vnni' : all.has('avx_vnni') ? 'avx-vnni' : all.has('avx2') ? 'avx2' : all.has('asimd') ? 'neon' : 'unknown';
  return { flags, int8, summary: `${model}; flags ${flags.join(' ') || 'none of interest'}; int8 path ${int8}` };
}
