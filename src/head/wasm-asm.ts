/**
 * Just enough of a WebAssembly assembler for the head's few SIMD loops (optimizer-wasm.ts,
 * random.ts): the project has no wasm toolchain, and these loops are a few dozen instructions.
 */

export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
export const simd = (op: number): number[] => [0xfd, ...uleb(op)];

export const get = (l: number) => [0x20, ...uleb(l)];
export const set = (l: number) => [0x21, ...uleb(l)];

/**
 * A module with one memory of `pages` 64 KiB pages exported as `memory`, and functions taking
 * `params[j]` (value types) and returning nothing, exported as `names[j]`; `bodies[j]` are
 * complete function bodies (size, locals, code, end).
 */
export function wasmModule(params: number[][], names: string[], bodies: number[][], pages: number): Uint8Array<ArrayBuffer> {
  const types = vec(params.map((p) => [0x60, ...vec(p.map((t) => [t])), 0]));
  const funcs = vec(params.map((_, j) => uleb(j)));
  const memory = vec([[0x00, ...uleb(pages)]]);
  const name = (s: string) => vec([...s].map((c) => [c.charCodeAt(0)]));
  const exports = vec([[...name('memory'), 0x02, 0], ...names.map((n, j) => [...name(n), 0x00, ...uleb(j)])]);
  const code = vec(bodies);
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...section(1, types), ...section(3, funcs), ...section(5, memory), ...section(7, exports), ...section(10, code)]);
}
