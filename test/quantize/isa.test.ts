import { describe, expect, it } from 'vitest';
import { cpuIsa } from '../../src/quantize/isa.js';

describe('cpuIsa', () => {
  it('names the best int8 path the flags allow, as MLAS picks it', () => {
    const info = (flags: string) => `processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 ${flags}\n`;
    expect(cpuIsa(info('avx2 fma')).int8).toBe('avx2');
    expect(cpuIsa(info('avx2 avx512f avx512_vnni')).int8).toBe('avx512-vnni');
    expect(cpuIsa(info('avx2 avx_vnni')).int8).toBe('avx-vnni');
    const xeon = cpuIsa(info('avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8'));
    expect(xeon.int8).toBe('amx');
    expect(xeon.summary).toBe('Test CPU; flags avx2 avx512f avx512_vnni avx512_bf16 amx_int8 amx_bf16; int8 path amx');
    expect(cpuIsa('processor : 0\nFeatures : fp asimd\n').int8).toBe('neon');
    expect(cpuIsa('').summary).toBe('unknown CPU; flags none of interest; int8 path unknown');
  });
});
