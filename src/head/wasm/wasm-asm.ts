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

export interface FloatLoop {
  /** Parameters of the function, the first being the count of float32s (≥ 1: the loop runs once first). */
  params: number;
  /** v128 locals, numbered from params + 2 (after the i32 locals i = params and end = params + 1). */
  v128Locals: number;
  /** Bytes the loop advances i by each time: 16 for four float32 lanes, 8 for two promoted ones. */
  stepBytes: number;
  /** Code before the loop (splats into the v128 locals, say). */
  setup?: number[];
  /** One pass of the loop at byte offset local i. */
  body: (i: number) => number[];
}

/** A complete function body: setup, then the body for i = 0, stepBytes, … while i < count·4 bytes. */
export function floatLoop(f: FloatLoop): number[] {
  const i = f.params;
  const end = i + 1;
  const code = [
    ...(f.setup ?? []),
    ...get(0),
    0x41,
    ...sleb(2),
    0x74,
    ...set(end), // end = count << 2 (bytes)
    0x03,
    0x40, // loop
    ...f.body(i),
    ...get(i),
    0x41,
    ...sleb(f.stepBytes),
    0x6a,
    0x22,
    ...uleb(i), // i += stepBytes (tee)
    ...get(end),
    0x49,
    0x0d,
    0, // br_if 0 when i < end
    0x0b,
    0x0b, // end loop, end function
  ];
  const body = [
    ...vec([
      [...uleb(2), I32],
      [...uleb(f.v128Locals), V128],
    ]),
    ...code,
  ];
  return [...uleb(body.length), ...body];
}

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
