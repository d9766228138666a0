/**
 * `npm run bench`: runs each benchmark in its own process, one after another (they would fight over
 * the cores otherwise), and forwards their output. Each prints its own rates and the ratio to a
 * reference measured in the same run (PyTorch through /usr/bin/python3 when it has torch, or bare
 * ONNX Runtime). Name benches to run only those: `npm run bench -- trunk head`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const all = ['data', 'weights', 'trunk', 'int8-kernels', 'backbones', 'extract', 'matmul', 'head', 'merge'];
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : all;
let failed = 0;
for (const name of names) {
  const file = join(here, `${name}.ts`);
  if (!existsSync(file)) {
    console.error(`bench: no bench/${name}.ts`);
    failed++;
    continue;
  }
  console.log(`\n=== bench/${name}.ts`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`bench: ${name} exited with ${r.status ?? r.signal}`);
    failed++;
  }
}
process.exitCode = failed > 0 ? 1 : 0;
