#!/usr/bin/env node
/**
 * `npm run setup:cuda`: fetch ONNX Runtime's CUDA execution provider for onnxruntime-node.
 *
 * The npm package ships CPU (and WebGPU) binaries only; the CUDA provider libraries are too large
 * for the npm registry and come from NuGet. onnxruntime-node's own install script knows where;
 * this wrapper runs it with the CUDA 12 selection, says what it needs, and turns its failure (an
 * unhandled rejection with a stack) into one line. The project's .npmrc sets
 * `onnxruntime-node-install=skip` so plain `npm install` never downloads; this is the opt-in.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FALLBACK = 'headstart still runs on WebGPU or CPU (--device webgpu or --device cpu)';
const verbose = process.argv.includes('--verbose');
const force = process.argv.includes('--force');

function fail(reason) {
  process.stderr.write(`setup:cuda failed: ${reason}; ${FALLBACK}\n`);
  process.exit(1);
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ortDir = join(root, 'node_modules', 'onnxruntime-node');
const installScript = join(ortDir, 'script', 'install.js');
// The three files onnxruntime-node's install-metadata.js lists for linux/x64:cuda12.
const providerDir = join(ortDir, 'bin', 'napi-v6', 'linux', 'x64');
const providerFiles = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so'];

process.stdout.write(
  [
    "setup:cuda installs ONNX Runtime's CUDA execution provider (NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux,",
    'several hundred MB) into node_modules/onnxruntime-node. It needs: Linux x64, an NVIDIA driver, CUDA 12 and',
    'cuDNN 9 libraries on the library path (LD_LIBRARY_PATH), and network access to api.nuget.org.',
    '',
  ].join('\n'),
);

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`onnxruntime-node publishes its CUDA provider for Linux x64 only, and this is ${process.platform}/${process.arch}`);
}
if (!existsSync(installScript)) fail(`${installScript} is missing; run npm install first`);

if (!force && providerFiles.every((f) => existsSync(join(providerDir, f)))) {
  process.stdout.write(`CUDA provider already installed in ${providerDir}; run with --force to install it again\n`);
  process.exit(0);
}

const smi = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], { encoding: 'utf8' });
if (smi.error !== undefined || smi.status !== 0) {
  process.stdout.write('note: nvidia-smi did not run, so no NVIDIA driver was found; the provider can install but will not load without one\n');
} else {
  process.stdout.write(`GPU: ${smi.stdout.trim().split('\n').join('; ')}\n`);
}

// Select CUDA 12 with ONNXRUNTIME_NODE_INSTALL_CUDA=v12. The newer ONNXRUNTIME_NODE_INSTALL=cuda12
// does not work in onnxruntime-node 1.30: parseInstallFlag() falls out of its switch for any value
// other than true/skip and returns undefined, and under `npm run` the script then takes this for a
// local install and exits 0 without downloading. The CUDA-only flag is read only when the general
// one is unset, so the general one (and npm's copy of the .npmrc's `skip`) must go.
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL_CUDA: 'v12' };
delete env.ONNXRUNTIME_NODE_INSTALL;
delete env.npm_config_onnxruntime_node_install;
delete env.npm_config_onnxruntime_node_install_cuda;

const child = spawn(process.execPath, [installScript], { cwd: ortDir, env, stdio: ['ignore', 'inherit', 'pipe'] });
let errText = '';
child.stderr.on('data', (chunk) => {
  errText += chunk;
  if (verbose) process.stderr.write(chunk);
});
child.on('error', (error) => fail(`could not start ${installScript} (${error.message})`));
child.on('close', (code, signal) => {
  if (code !== 0) {
    // The install script dies on an unhandled rejection; its `Error: ...` line is the reason.
    const line = errText
      .split('\n')
      .map((l) => l.trim())
      .find((l) => /^[A-Za-z]*Error: /.test(l));
    const reason = line ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
    fail(`could not install ONNX Runtime's CUDA provider (${reason.replace(/^Error: /, '')})${verbose ? '' : '; run with --verbose for its output'}`);
  }
  const missing = providerFiles.filter((f) => !existsSync(join(providerDir, f)));
  if (missing.length > 0) fail(`the install script finished but ${missing.join(', ')} is missing from ${providerDir}`);
  process.stdout.write(`CUDA provider installed in ${providerDir}; headstart uses it with --device cuda (or auto)\n`);
});
