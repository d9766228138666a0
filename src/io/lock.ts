/**
 * Owner locks for files several headstart processes may write: a lock file next to what it guards,
 * holding JSON {pid, host, started, command}. It appears atomically with its contents (written to
 * a private file, then hard-linked into place, which fails when the name exists: O_EXCL's
 * guarantee without a moment where the lock is empty), so a reader never sees a half-written one.
 *
 * A crash cannot leave a lock stuck: a lock whose owner ran on this host and no longer exists
 * (kill(pid, 0) says ESRCH) is stale, and the next run takes it over with a note naming the old
 * PID. A lock held by a live process is waited for or refused. A lock from another host cannot be
 * judged from here, so it is refused with a line that says how to remove it.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { InputError } from '../errors.js';

export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** The command line of the owner, for people reading the lock or a message. */
  command: string;
}

export interface LockOptions {
  /** What the lock guards, for messages: `feature cache cache/x.h5`. */
  what: string;
  /** Wait for a live holder to let go (true) or refuse at once in one line (false). */
  wait: boolean;
  /** Said once when this call starts waiting: who holds the lock and what it waits for. */
  onWait?: (line: string) => void;
  /** Other notes (a stale lock taken over). */
  onNote?: (line: string) => void;
  /** Between two looks at a held lock; default 200 ms. */
  pollMs?: number;
  /** Recorded as the owner's command; default this process's script name and arguments. */
  command?: string;
}

export interface LockHandle {
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock if it is still this owner's; safe to call twice. */
  release(): Promise<void>;
}

function describe(owner: LockOwner): string {
  return `PID ${owner.pid} on ${owner.host} since ${owner.started}${owner.command === '' ? '' : ` (${owner.command})`}`;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner> | null;
    if (o === null || typeof o !== 'object' || !Number.isSafeInteger(o.pid) || (o.pid as number) <= 0 || typeof o.host !== 'string') return undefined;
    return { pid: o.pid as number, host: o.host, started: String(o.started ?? '?'), command: typeof o.command === 'string' ? o.command : '' };
  } catch {
    return undefined;
  }
}

type Look = { state: 'free' } | { state: 'unreadable' } | { state: 'held'; owner: LockOwner; text: string };

async function look(path: string): Promise<Look> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'free' };
    throw error;
  }
  const owner = parseOwner(text);
  return owner === undefined ? { state: 'unreadable' } : { state: 'held', owner, text };
}

/** alive, dead (on this host and gone) or unknown (another host). */
export function ownerState(owner: LockOwner, host = hostname()): 'alive' | 'dead' | 'unknown' {
  if (owner.host !== host) return 'unknown';
  if (owner.pid === process.pid) return 'alive';
  try {
    process.kill(owner.pid, 0);
    return 'alive';
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? 'dead' : 'alive';
  }
}

/** Creates `path` holding `text`, or returns false when it exists; never leaves it empty. */
async function createExclusive(path: string, text: string): Promise<boolean> {
  const own = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fh = await open(own, 'wx');
  try {
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(own, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(own, { force: true });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Removes a stale lock whose text is still `text`. Two runs may find the same stale lock at once:
 * a short-lived second lock (`<path>.takeover`) lets only one of them remove it, so neither can
 * delete a lock the other has just taken.
 */
async function takeOver(path: string, text: string): Promise<boolean> {
  const guard = `${path}.takeover`;
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString(), command: 'taking over a stale lock' });
  if (!(await createExclusive(guard, mine))) {
    const other = await look(guard);
    // A run killed in the middle of a takeover: nobody else can be in it, so its guard goes.
    if (other.state === 'held' && ownerState(other.owner) === 'dead') await rm(guard, { force: true });
    return false;
  }
  try {
    const now = await look(path);
    if (now.state !== 'held' || now.text !== text) return false;
    await rm(path, { force: true });
    return true;
  } finally {
    await rm(guard, { force: true });
  }
}

/**
 * Takes the lock at `path`. Throws InputError when it is held and `wait` is off, when it belongs
 * to another host, or when the file is not a lock this code wrote. I/O errors (ENOSPC, EACCES)
 * are thrown as they are, for the caller to put in its own words.
 */
export async function acquireLock(path: string, options: LockOptions): Promise<LockHandle> {
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    command: options.command ?? [basename(process.argv[1] ?? 'node'), ...process.argv.slice(2)].join(' '),
  };
  const text = JSON.stringify(owner);
  const pollMs = options.pollMs ?? 200;
  let waitingFor: string | undefined;
  for (;;) {
    if (await createExclusive(path, text)) break;
    const seen = await look(path);
    if (seen.state === 'free') continue;
    if (seen.state === 'unreadable') {
      throw new InputError(`Cannot lock ${options.what}: the lock file ${path} is not one headstart wrote; if no headstart run is using it, delete ${path} and run again`);
    }
    const state = ownerState(seen.owner);
    if (state === 'dead') {
      if (await takeOver(path, seen.text)) {
        options.onNote?.(`Taking over the lock ${path} of ${options.what} from PID ${seen.owner.pid}, which no longer runs`);
      } else {
        await sleep(Math.min(pollMs, 50));
      }
      continue;
    }
    if (state === 'unknown') {
      throw new InputError(
        `Cannot lock ${options.what}: it is locked by ${describe(seen.owner)}, another host, so this run cannot tell whether it still runs; if that run is gone, delete ${path} and run again`,
      );
    }
    if (seen.owner.pid === process.pid && seen.owner.host === owner.host) {
      // Waiting for itself would never end: a caller that took the lock twice is a bug.
      throw new Error(`acquireLock: ${path} is already held by this process`);
    }
    if (!options.wait) {
      throw new InputError(`Cannot lock ${options.what}: it is in use by ${describe(seen.owner)}; wait for that run to finish (lock ${path})`);
    }
    // Said once per holder: a new one (the lock changed hands meanwhile) is news.
    if (waitingFor !== seen.text) {
      waitingFor = seen.text;
      options.onWait?.(`Waiting for ${describe(seen.owner)}, which is writing ${options.what} (lock ${path})`);
    }
    await sleep(pollMs);
  }
  let released = false;
  return {
    path,
    owner,
    async release() {
      if (released) return;
      released = true;
      const now = await look(path).catch(() => ({ state: 'free' }) as Look);
      // Only this owner's lock goes: one taken over after this process was judged dead is not ours.
      if (now.state === 'held' && now.text === text) await rm(path, { force: true });
    },
  };
}
