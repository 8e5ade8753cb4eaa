import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

const root = new URL('../../', import.meta.url).pathname;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `triad ARGS` as its own process, as a user would type it, until it exits (20 s at most). */
export function runTriad(
  args: string[],
  options: { entry?: string; cwd?: string; env?: Record<string, string> } = {},
): Promise<CliRun> {
  const child = spawn(process.execPath, [options.entry ?? `${root}bin/triad.js`, ...args], {
    cwd: options.cwd ?? root,
    env: { ...process.env, TRIAD_DEBUG: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A command that stopped the way a user should see it: non-zero, one line on stderr that says
 * what is wrong (matching `pattern`), and no stack trace.
 */
export function assertOneLineError(run: CliRun, pattern: RegExp, what: string): void {
  assert.notEqual(run.code, 0, `${what}: exit code`);
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: one line, got:\n${run.stderr}`);
  assert.match(lines[0], /^(triad|error)/, what);
  assert.match(lines[0], pattern, what);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `${what}: no stack trace`);
}
