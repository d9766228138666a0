import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { acquireLock } from '../../src/io/lock.js';
import { rejection } from '../helpers/errors.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-lock-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const fresh = (): string => join(root, `l${n++}.lock`);

/** A PID that ran on this host and has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

/** A live process on this host that is not this one. */
function liveChild(): ChildProcess {
  const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'ignore' });
  children.push(c);
  return c;
}

const ownerText = (pid: number, host = hostname()): string => JSON.stringify({ pid, host, started: '2026-01-01T00:00:00.000Z', command: 'headstart extract --split train' });

describe('acquireLock', () => {
  it('creates the lock with its owner and removes it on release, leaving nothing else', async () => {
    const path = fresh();
    const lock = await acquireLock(path, { what: 'thing', wait: false, command: 'headstart test' });
    const owner = JSON.parse(readFileSync(path, 'utf8'));
    expect(owner).toEqual({ pid: process.pid, host: hostname(), started: lock.owner.started, command: 'headstart test' });
    expect(Number.isNaN(Date.parse(owner.started))).toBe(false);
    await lock.release();
    await lock.release();
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(root).filter((f) => f.startsWith(path.split('/').pop()!))).toEqual([]);
  });

  it('refuses in one line when a live process holds it and waiting is off', async () => {
    const path = fresh();
    const holder = liveChild();
    writeFileSync(path, ownerText(holder.pid!));
    const error = await rejection(acquireLock(path, { what: 'the train split of c.h5', wait: false }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(
      `Cannot lock the train split of c.h5: it is in use by PID ${holder.pid} on ${hostname()} since 2026-01-01T00:00:00.000Z (headstart extract --split train); wait for that run to finish (lock ${path})`,
    );
    expect(readFileSync(path, 'utf8')).toBe(ownerText(holder.pid!));
  });

  it('takes over a stale lock (its PID no longer runs on this host) with a note naming the PID', async () => {
    const path = fresh();
    const pid = deadPid();
    writeFileSync(path, ownerText(pid));
    const notes: string[] = [];
    const lock = await acquireLock(path, { what: 'feature cache c.h5', wait: false, onNote: (l) => notes.push(l) });
    expect(notes).toEqual([`Taking over the lock ${path} of feature cache c.h5 from PID ${pid}, which no longer runs`]);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('refuses a lock from another host in one line that says how to remove it', async () => {
    const path = fresh();
    writeFileSync(path, ownerText(4242, 'other-host.example'));
    const error = await rejection(acquireLock(path, { what: 'feature cache c.h5', wait: true }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(
      `Cannot lock feature cache c.h5: it is locked by PID 4242 on other-host.example since 2026-01-01T00:00:00.000Z (headstart extract --split train), another host, so this run cannot tell whether it still runs; if that run is gone, delete ${path} and run again`,
    );
  });

  it('refuses a lock file it did not write', async () => {
    const path = fresh();
    writeFileSync(path, 'not json');
    const error = await rejection(acquireLock(path, { what: 'feature cache c.h5', wait: true }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(`Cannot lock feature cache c.h5: the lock file ${path} is not one headstart wrote; if no headstart run is using it, delete ${path} and run again`);
  });

  it('waits for a live holder, saying once who holds it, and goes on when that process is gone', async () => {
    const path = fresh();
    const holder = liveChild();
    writeFileSync(path, ownerText(holder.pid!));
    const waits: string[] = [];
    const notes: string[] = [];
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    const taking = acquireLock(path, {
      what: 'feature cache c.h5',
      wait: true,
      pollMs: 20,
      onWait: (l) => {
        waits.push(l);
        holder.kill('SIGKILL');
      },
      onNote: (l) => notes.push(l),
    });
    const lock = await taking;
    await exited;
    expect(waits).toEqual([`Waiting for PID ${holder.pid} on ${hostname()} since 2026-01-01T00:00:00.000Z (headstart extract --split train), which is writing feature cache c.h5 (lock ${path})`]);
    expect(notes).toEqual([`Taking over the lock ${path} of feature cache c.h5 from PID ${holder.pid}, which no longer runs`]);
    await lock.release();
  });

  it('waits for a holder that releases the lock, then takes it', async () => {
    const path = fresh();
    const first = await acquireLock(path, { what: 'x', wait: false });
    // Another process holds it: a real child that takes the lock and lets go when told.
    await first.release();
    const script = `import { acquireLock } from ${JSON.stringify(join(process.cwd(), 'src/io/lock.ts'))};
      const lock = await acquireLock(${JSON.stringify(path)}, { what: 'x', wait: false, command: 'child' });
      process.stdout.write('held\\n');
      process.stdin.once('data', async () => { await lock.release(); process.exit(0); });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const waits: string[] = [];
    const lock = await acquireLock(path, {
      what: 'x',
      wait: true,
      pollMs: 20,
      onWait: (l) => {
        waits.push(l);
        child.stdin!.write('go\n');
      },
    });
    expect(waits).toHaveLength(1);
    expect(waits[0]).toContain(`Waiting for PID ${child.pid} on ${hostname()} since `);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('release leaves a lock that is no longer its own', async () => {
    const path = fresh();
    const lock = await acquireLock(path, { what: 'x', wait: false });
    const other = ownerText(deadPid());
    writeFileSync(path, other);
    await lock.release();
    expect(readFileSync(path, 'utf8')).toBe(other);
  });

  it('taking the same lock twice in one process is a bug, not a wait', async () => {
    const path = fresh();
    const lock = await acquireLock(path, { what: 'x', wait: false });
    await expect(acquireLock(path, { what: 'x', wait: true })).rejects.toThrow(`acquireLock: ${path} is already held by this process`);
    await lock.release();
  });
});
