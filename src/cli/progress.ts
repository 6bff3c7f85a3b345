import type { Progress } from '../client/types.js';
import { humanSize } from './format.js';

export interface ProgressReporter {
  update(progress: Progress): void;
  stop(): void;
}

const silent: ProgressReporter = { update: () => undefined, stop: () => undefined };

/** Whether bars may be drawn: stderr is a terminal, not --quiet, and NO_COLOR/CI do not forbid it. */
export function wantsProgress(quiet: boolean | undefined): boolean {
  return !quiet && process.stderr.isTTY === true && !process.env.CI;
}

/** A progress bar with rate and ETA on stderr, or nothing when not wanted. */
export async function progressBar(label: string, quiet: boolean | undefined): Promise<ProgressReporter> {
  if (!wantsProgress(quiet)) return silent;
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% {done}/{size} {speed} ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let begun = false;
  return {
    update({ bytes, total }) {
      const size = total ?? bytes;
      const seconds = Math.max((Date.now() - started) / 1000, 0.001);
      const payload = { done: humanSize(bytes), size: humanSize(size), speed: `${humanSize(Math.round(bytes / seconds))}/s` };
      if (!begun) {
        bar.start(Math.max(size, 1), bytes, payload);
        begun = true;
      } else {
        bar.setTotal(Math.max(size, 1));
        bar.update(bytes, payload);
      }
    },
    stop() {
      if (begun) bar.stop();
    },
  };
}

/** Overall progress of many files: files done / total, bytes, rate and ETA. */
export interface BatchProgress {
  /** A file advanced: `delta` more bytes moved. */
  bytes(delta: number): void;
  /** More files to move were found (a tree is walked as it is sent): the totals grow. */
  found(files: number, bytes: number): void;
  fileDone(): void;
  stop(): void;
}

export async function batchProgressBar(label: string, files: number, totalBytes: number, quiet: boolean | undefined): Promise<BatchProgress> {
  if (!wantsProgress(quiet)) return { bytes: () => undefined, found: () => undefined, fileDone: () => undefined, stop: () => undefined };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {filesDone}/{files} files {done}/{size} {speed} ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 100,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let moved = 0;
  let filesDone = 0;
  const payload = (): Record<string, string | number> => ({
    files,
    filesDone,
    done: humanSize(moved),
    size: humanSize(totalBytes),
    speed: `${humanSize(Math.round(moved / Math.max((Date.now() - started) / 1000, 0.001)))}/s`,
  });
  bar.start(Math.max(totalBytes, 1), 0, payload());
  return {
    bytes(delta) {
      moved += delta;
      bar.update(moved, payload());
    },
    found(more, bytes) {
      files += more;
      totalBytes += bytes;
      bar.setTotal(Math.max(totalBytes, 1));
    },
    fileDone() {
      filesDone++;
      bar.update(moved, payload());
    },
    stop() {
      bar.stop();
    },
  };
}
