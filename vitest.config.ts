import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Asks Dawn once per run whether the WebGPU tests can run (test/helpers/webgpu.ts).
    globalSetup: ['test/helpers/webgpu-setup.ts'],
    // ONNX Runtime and h5wasm tests are CPU-heavy on 2 cores; forks keep native sessions isolated.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
