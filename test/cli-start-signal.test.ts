import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort, tempDir } from './helpers/hub-process.ts';

/**
 * `triad start` told to stop (SIGTERM, Ctrl-C) while it is still starting: it stops cleanly once
 * the start has ended, exit 0, instead of pulling the MQTT connection from under the subsystems
 * still starting ("could not start: MQTT connection is not open", exit 1) and logging their
 * "ready" after its "stopping".
 */

const root = new URL('../', import.meta.url).pathname;

/** Starts the demo hub as a user would, sends `signal` when a log line matches `when`, and waits for the exit. */
async function signalDuringStart(
  signal: NodeJS.Signals,
  when: RegExp,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [httpPort, mqttPort] = [await freePort(), await freePort()];
  const args = ['start', '--demo', '--data', join(await tempDir('triad-signal-'), 'data')];
  args.push('--http-host', '127.0.0.1', '--http-port', String(httpPort));
  args.push('--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort));
  const child = spawn(process.execPath, [`${root}bin/triad.js`, ...args], {
    cwd: root,
    env: { ...process.env, TRIAD_FROM_SOURCE: '1', TRIAD_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let sent = false;
  const onOutput = () => {
    if (!sent && when.test(stdout)) {
      sent = true;
      child.kill(signal);
    }
  };
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    onOutput();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      assert.ok(sent, `the signal was sent (no line matched ${when}):\n${stdout}\n${stderr}`);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('triad start: a signal during start-up', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`stops cleanly on ${signal} as MQTT comes up, nothing ready after stopping`, async () => {
      const run = await signalDuringStart(signal, /MQTT ready/);
      const what = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
      assert.equal(run.code, 0, what);
      assert.doesNotMatch(run.stderr, /could not start|not open/, what);
      const lines = run.stdout.split('\n');
      const stopping = lines.findIndex((line) => new RegExp(`${signal} received; stopping`).test(line));
      assert.ok(stopping >= 0, `"stopping" is logged: ${what}`);
      const readyAfter = lines.slice(stopping).filter((line) => /\bready\b/.test(line));
      assert.deepEqual(readyAfter, [], 'nothing is ready after stopping');
      // It never said it was running.
      assert.doesNotMatch(run.stdout, /is running/, what);
    });
  }
});
