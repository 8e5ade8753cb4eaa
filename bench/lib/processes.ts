import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime; 100 on every Linux we target. */
const CLOCK_TICKS = 100;

/** Every child this run started and has not yet seen exit, so Ctrl-C can stop exactly those. */
const running = new Set<ManagedProcess>();

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the process wrote so far (stdout and stderr), for error messages. */
  output(): string;
  /** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** The process is ready once its output matches this. */
  ready: RegExp;
  timeoutMs?: number;
}

/** Starts a child process and waits until its output says it is ready. */
export async function startProcess(options: StartOptions): Promise<ManagedProcess> {
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const managed: ManagedProcess = {
    name: options.name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(managed);
  void exited.then(() => running.delete(managed));
  const collect = (data: Buffer) => {
    // Keep the head (start-up errors) and the tail; a chatty child must not grow our memory.
    out += data.toString();
    if (out.length > 200_000) out = `${out.slice(0, 20_000)}\n…\n${out.slice(-100_000)}`;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      void managed.stop();
      reject(
        new Error(
          `${options.name} was not ready within ${(options.timeoutMs ?? 30_000) / 1000} s:\n${out.slice(-4000)}`,
        ),
      );
    }, options.timeoutMs ?? 30_000);
    const check = () => {
      if (options.ready.test(out)) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        child.stderr?.off('data', check);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(
        new Error(
          `${options.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${out.slice(-4000)}`,
        ),
      );
    });
  });
  return managed;
}

/** Stops every child still running; used at the end and on Ctrl-C. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(3000)));
}

/** Synchronous last resort for process exit: SIGKILL each child we started, by its pid. */
export function killAllNow(): void {
  for (const p of running) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/**
 * CPU seconds of a process's main thread alone (its thread id is the process id): the thread that
 * handles every message, so the one whose time the round trip waits for. The rest of the process
 * is helper threads (a store writer, V8's garbage collector and compiler).
 */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpuSeconds(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
}

function statCpuSeconds(stat: string): number {
  // The command name may contain spaces; fields are counted from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS;
}

/** Resident memory of a process in bytes, from /proc/<pid>/status. */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The repository root, for spawning `bin/triad.js` and the peers. */
export const ROOT = new URL('../../', import.meta.url).pathname;

/** How to run one of the benchmark's own TypeScript helpers as a process. */
export function tsNode(script: string, args: string[] = []): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', `${ROOT}bench/peers/${script}`, ...args] };
}
