/**
 * The one-op ONNX graphs behind the ORT kernels. Inputs have no declared rank or dims, so one
 * session per graph serves every shape; ORT checks shapes at run time.
 */
import { OnnxDataType, type OnnxGraph, type OnnxNode } from '../../../onnx/op-model.js';

export type GraphKey =
  /** a·b with optional transposes of the last two dims; batch dims broadcast numpy-style. */
  | { op: 'matmul'; tA: boolean; tB: boolean }
  /** 2-D a·b + c then optional relu (Gemm; ORT fuses Gemm+Relu). */
  | { op: 'gemm'; tA: boolean; tB: boolean; bias: boolean; relu: boolean }
  /** batched a·b + c then optional relu. */
  | { op: 'fusedMatMul'; tA: boolean; tB: boolean; bias: boolean; relu: boolean }
  /** ReduceSum of x over the int64 `axes` input. */
  | { op: 'sum'; keepDims: boolean }
  /** y = a (op) b with numpy broadcasting. */
  | { op: 'binary'; type: 'Add' | 'Sub' | 'Mul' | 'Div' }
  /** y = f(x); Square is Mul(x, x). */
  | { op: 'unary'; type: 'Relu' | 'Sqrt' | 'Square' }
  /** The 2-D transpose of x. */
  | { op: 'transpose' }
  /** tfjs's step: x > 0 ? 1 : alpha, NaN stays NaN; the constants arrive as inputs. */
  | { op: 'step' };

const F = OnnxDataType.FLOAT;
const OPSETS = { '': 17, 'com.microsoft': 1 };

function matMulNode(tA: boolean, tB: boolean, output: string): OnnxNode {
  if (!tA && !tB) return { opType: 'MatMul', inputs: ['a', 'b'], outputs: [output] };
  // com.microsoft FusedMatMul hands the transposes to MLAS's GEMM, so no transposed copy is made.
  return {
    opType: 'FusedMatMul',
    domain: 'com.microsoft',
    inputs: ['a', 'b'],
    outputs: [output],
    attributes: [
      { name: 'transA', kind: 'int', value: tA ? 1 : 0 },
      { name: 'transB', kind: 'int', value: tB ? 1 : 0 },
      { name: 'alpha', kind: 'float', value: 1 },
    ],
  };
}

/** Appends bias add and relu nodes as the key asks, naming the last output `y`. */
function epilogue(first: OnnxNode, bias: boolean, relu: boolean): OnnxNode[] {
  const nodes = [first];
  let last = 'mm';
  if (bias) {
    nodes.push({ opType: 'Add', inputs: [last, 'c'], outputs: [relu ? 'biased' : 'y'] });
    last = 'biased';
  }
  if (relu) nodes.push({ opType: 'Relu', inputs: [last], outputs: ['y'] });
  if (!bias && !relu) first.outputs = ['y'];
  return nodes;
}

export function buildGraph(key: GraphKey): OnnxGraph {
  const output = [{ name: 'y', elemType: F }];
  switch (key.op) {
    case 'matmul':
      return {
        opsets: OPSETS,
        nodes: [matMulNode(key.tA, key.tB, 'y')],
        inputs: [
          { name: 'a', elemType: F },
          { name: 'b', elemType: F },
        ],
        outputs: output,
      };
    case 'gemm': {
      const gemm: OnnxNode = {
        opType: 'Gemm',
        inputs: key.bias ? ['a', 'b', 'c'] : ['a', 'b'],
        outputs: [key.relu ? 'mm' : 'y'],
        attributes: [
          { name: 'transA', kind: 'int', value: key.tA ? 1 : 0 },
          { name: 'transB', kind: 'int', value: key.tB ? 1 : 0 },
        ],
      };
      const nodes = key.relu ? [gemm, { opType: 'Relu', inputs: ['mm'], outputs: ['y'] }] : [gemm];
      return {
        opsets: OPSETS,
        nodes,
        inputs: [{ name: 'a', elemType: F, dims: ['m_or_k', 'k_or_m'] }, { name: 'b', elemType: F, dims: ['k_or_n', 'n_or_k'] }, ...(key.bias ? [{ name: 'c', elemType: F }] : [])],
        outputs: output,
      };
    }
    case 'fusedMatMul':
      return {
        opsets: OPSETS,
        nodes: epilogue(matMulNode(key.tA, key.tB, 'mm'), key.bias, key.relu),
        inputs: [{ name: 'a', elemType: F }, { name: 'b', elemType: F }, ...(key.bias ? [{ name: 'c', elemType: F }] : [])],
        outputs: output,
      };
    case 'sum':
      return {
        opsets: OPSETS,
        nodes: [
          {
            opType: 'ReduceSum',
            inputs: ['x', 'axes'],
            outputs: ['y'],
            attributes: [{ name: 'keepdims', kind: 'int', value: key.keepDims ? 1 : 0 }],
          },
        ],
        inputs: [
          { name: 'x', elemType: F },
          { name: 'axes', elemType: OnnxDataType.INT64, dims: ['r'] },
        ],
        outputs: output,
      };
    case 'binary':
      return {
        opsets: OPSETS,
        nodes: [{ opType: key.type, inputs: ['a', 'b'], outputs: ['y'] }],
        inputs: [
          { name: 'a', elemType: F },
          { name: 'b', elemType: F },
        ],
        outputs: output,
      };
    case 'unary':
      return {
        opsets: OPSETS,
        nodes: [key.type === 'Square' ? { opType: 'Mul', inputs: ['x', 'x'], outputs: ['y'] } : { opType: key.type, inputs: ['x'], outputs: ['y'] }],
        inputs: [{ name: 'x', elemType: F }],
        outputs: output,
      };
    case 'transpose':
      return {
        opsets: OPSETS,
        nodes: [{ opType: 'Transpose', inputs: ['x'], outputs: ['y'] }],
        inputs: [{ name: 'x', elemType: F, dims: ['rows', 'cols'] }],
        outputs: output,
      };
    case 'step':
      return {
        opsets: OPSETS,
        nodes: [
          { opType: 'Greater', inputs: ['x', 'zero'], outputs: ['positive'] },
          { opType: 'Where', inputs: ['positive', 'one', 'alpha'], outputs: ['stepped'] },
          { opType: 'IsNaN', inputs: ['x'], outputs: ['nan'] },
          { opType: 'Where', inputs: ['nan', 'x', 'stepped'], outputs: ['y'] },
        ],
        inputs: ['x', 'zero', 'one', 'alpha'].map((name) => ({ name, elemType: F })),
        outputs: output,
      };
  }
}
