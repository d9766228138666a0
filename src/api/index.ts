/**
 * The library's typed operations, as the CLI runs them: each takes its options (defaults in
 * defaults.ts) and hooks (reporter, abort signal, clock, env), returns a typed result, and never
 * prints, exits or installs signal handlers.
 */
export { extract } from '../extract/run.js';
export { trainHead } from '../head/run.js';
export { sweepHeads, type SweepResult } from '../head/sweep.js';
export type { SweepSummary, SweepRow } from '../head/sweep-summary.js';
export { findLearningRate, type FindLearningRateResult } from '../head/lr-find.js';
export { evaluate } from '../predict/evaluate.js';
export { predict } from '../predict/run.js';
export { exportOnnx, type ExportResult } from '../export.js';
export { demo, type DemoResult } from '../demo.js';
export * from './defaults.js';
export { resolveHooks, silentReporter, streamReporter, reporterCallbacks, type ResolvedHooks } from './reporter.js';
export * from './types.js';
