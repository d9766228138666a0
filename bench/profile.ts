/** The ONNX Runtime kernels a model's CPU session runs, from a session profile (enableProfiling). */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

/** "QLinearConv 91%, MaxPool 4%, ...": op kinds by their share of kernel time over one run after a warm-up. */
export async function profiledKernels(modelPath: string, x: Float32Array, dims: number[], threads: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'headstart-profile-'));
  try {
    const session = await ort.InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      enableProfiling: true,
      profileFilePrefix: join(dir, 'p'),
      logSeverityLevel: 3,
    });
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', x, dims) };
    await session.run(feeds);
    session.endProfiling();
    await session.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (file === undefined) return 'no profile written';
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
    const time = new Map<string, number>();
    let total = 0;
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const op = e.args?.op_name ?? '?';
      time.set(op, (time.get(op) ?? 0) + e.dur);
      total += e.dur;
    }
    return [...time]
      .sort((a, b) => b[1] - a[1])
      .map(([op, us]) => `${op} ${((100 * us) / total).toFixed(0)}%`)
      .join(', ');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
