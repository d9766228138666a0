import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/http-server.js';

function runScript(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/setup-cuda.mjs', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run setup:cuda', () => {
  it.runIf(process.platform === 'linux' && process.arch === 'x64')('fails cleanly with one line when NuGet cannot be reached', async () => {
    // onnxruntime-node's install script honours GLOBAL_AGENT_HTTPS_PROXY; a closed local port as the
    // proxy makes every request fail at once, so this never reaches the network.
    const port = await closedPort();
    const env: NodeJS.ProcessEnv = { ...process.env, GLOBAL_AGENT_HTTPS_PROXY: `http://127.0.0.1:${port}` };
    delete env.GLOBAL_AGENT_NO_PROXY;
    const { code, stdout, stderr } = await runScript(['--force'], env);
    expect(code).toBe(1);
    expect(stdout).toContain('an NVIDIA driver, CUDA 12 and\ncuDNN 9 libraries');
    expect(stdout).toContain('network access to api.nuget.org');
    expect(stderr).toBe(
      `setup:cuda failed: could not install ONNX Runtime's CUDA provider (connect ECONNREFUSED 127.0.0.1:${port}); run with --verbose for its output; headstart still runs on WebGPU or CPU (--device webgpu or --device cpu)\n`,
    );
  });
});
