/**
 * Progress on stderr: count, percentage, rate and ETA. Library code reports through callbacks
 * (`onProgress(done, total)`); the bar is one such callback, made by the run* functions.
 */
export interface TextSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export type Clock = () => number;

export interface ProgressBarOptions {
  stream: TextSink;
  label: string;
  unit: string;
  clock?: Clock;
  /** Minimum time between two non-TTY lines, in ms; TTYs redraw at most every 100 ms. */
  intervalMs?: number;
}

export interface ProgressBar {
  update(done: number, total: number): void;
  /** Clears the bar; returns seconds elapsed and the average rate. */
  finish(): { seconds: number; rate: number };
}

/** 1.2 GB, 340.0 MB, 12.8 kB: sizes in summaries and messages. */
export function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate >= 10 ? rate.toFixed(1) : rate.toFixed(2);
}

const MIN_RATE_SECONDS = 0.5;

export function progressBar(options: ProgressBarOptions): ProgressBar {
  const clock = options.clock ?? (() => performance.now());
  const tty = options.stream.isTTY === true;
  const interval = tty ? 100 : (options.intervalMs ?? 5000);
  const start = clock();
  let last = -Infinity;
  let lastDone = 0;
  let drawn = false;
  const line = (done: number, total: number): string => {
    const seconds = (clock() - start) / 1000;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
    const head = `${options.label} ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${pct}%`;
    // A rate from the first fraction of a second is noise (thousands of batches/s): leave it out.
    if (done === 0 || (done < total && seconds < MIN_RATE_SECONDS)) return head;
    const rate = done / seconds;
    return `${head} ${formatRate(rate)} ${options.unit}/s ETA ${formatDuration((total - done) / rate)}`;
  };
  return {
    update(done, total) {
      lastDone = done;
      const now = clock();
      if (now - last < interval && done < total) return;
      last = now;
      if (tty) {
        options.stream.write(`\r\x1b[2K${line(done, total)}`);
        drawn = true;
      } else {
        options.stream.write(`${line(done, total)}\n`);
      }
    },
    finish() {
      if (tty && drawn) options.stream.write('\r\x1b[2K');
      const seconds = (clock() - start) / 1000;
      return { seconds, rate: seconds > 0 ? lastDone / seconds : 0 };
    },
  };
}
