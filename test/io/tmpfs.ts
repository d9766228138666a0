/**
 * A real tmpfs for full-disk and read-only tests. Mounting needs root (or CAP_SYS_ADMIN): the
 * tests find out by trying, and skip with the reason when the mount is refused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Tmpfs {
  dir: string;
  /** Why it could not be mounted; undefined when mounted. */
  skip?: string;
  /** Bytes free now, as statfs reports them. */
  free(): number;
  /** Takes all but `leave` bytes of the free space with a filler file (replacing an earlier one). */
  fill(leave: number): void;
  /** Removes the filler. */
  unfill(): void;
  readOnly(on: boolean): void;
  unmount(): void;
}

function attempt(args: string[]): string | undefined {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.error) return r.error.message;
  return r.status === 0 ? undefined : (r.stderr || r.stdout || `exit ${r.status}`).trim();
}

export function mountTmpfs(dir: string, sizeKb: number): Tmpfs {
  mkdirSync(dir, { recursive: true });
  const failed = attempt(['mount', '-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir]);
  const filler = join(dir, 'filler');
  const t: Tmpfs = {
    dir,
    skip: failed === undefined ? undefined : `cannot mount a tmpfs here (${failed}); run the tests as root to check full disks for real`,
    free: () => {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    fill(leave) {
      rmSync(filler, { force: true });
      // tmpfs hands out whole pages: leave a whole number of them.
      const take = t.free() - Math.ceil(leave / 4096) * 4096;
      if (take > 0) writeFileSync(filler, Buffer.alloc(take));
    },
    unfill: () => rmSync(filler, { force: true }),
    readOnly(on) {
      execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, dir]);
    },
    unmount() {
      if (failed !== undefined) return;
      attempt(['umount', dir]);
    },
  };
  return t;
}

/** Every `*.tmp` under `dir`, at any depth: what a failed write must not leave behind. */
export function temporaryFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((n) => n.endsWith('.tmp'));
}
