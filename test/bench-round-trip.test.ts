import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { roundTrip } from '../bench/lib/mqtt-load.ts';
import { needService, services } from './helpers/services.ts';

const mosquittoSkip = await needService('mqtt');

/**
 * The benchmark's round trip through the machine's Mosquitto with the broker itself as the
 * system (the floor): every report comes straight back on the topic it went out on, matched by
 * the `seq` in its payload. These pin what the lead-in does to the counts.
 */
describe('bench round trip', () => {
  const topic = `triad-test/bench-rt/${randomBytes(4).toString('hex')}`;
  const report = (seq: number) => ({ topic, payload: JSON.stringify({ seq }) });

  test('a lead-in is sent first and left out of the latency, but its answers count', {
    skip: mosquittoSkip,
  }, async () => {
    let startedAfter = -1;
    let sentSoFar = 0;
    const result = await roundTrip({
      brokerUrl: services.mqtt,
      rate: 200,
      seconds: 0.5,
      leadInSeconds: 0.5,
      report: (seq) => {
        sentSoFar = seq + 1;
        return report(seq);
      },
      answerTopic: topic,
      correlate: 'seq',
      drainMs: 500,
      onStart: () => {
        startedAfter = sentSoFar;
      },
    });
    assert.equal(result.sent, 200);
    assert.equal(result.received, 200);
    assert.equal(result.lost, 0);
    assert.equal(result.measured, 100);
    assert.equal(result.latency.count, 100);
    assert.equal(result.leadIn?.count, 100);
    // The CPU counters are read when the first measured report is due, after the whole lead-in.
    assert.equal(startedAfter, 100);
    // The measured half goes out at 200/s after the lead-in's half: ~0.5 s, where the whole run
    // (what sendSeconds was before the lead-in) takes ~1 s.
    assert.ok(result.sendSeconds > 0.3 && result.sendSeconds < 0.9, `sendSeconds ${result.sendSeconds}`);
  });

  test('a lead-in report that is lost counts as lost and leaves the measured answers alone', {
    skip: mosquittoSkip,
  }, async () => {
    // Report 10 goes where nobody listens: the broker never answers it.
    const result = await roundTrip({
      brokerUrl: services.mqtt,
      rate: 200,
      seconds: 0.5,
      leadInSeconds: 0.5,
      report: (seq) => (seq === 10 ? { topic: `${topic}/nowhere`, payload: JSON.stringify({ seq }) } : report(seq)),
      answerTopic: topic,
      correlate: 'seq',
      drainMs: 500,
    });
    assert.equal(result.lost, 1);
    assert.equal(result.measured, 100);
    assert.equal(result.leadIn?.count, 99);
  });

  test('an answer that arrives twice is counted once', { skip: mosquittoSkip }, async () => {
    // Every report goes out twice under one seq, as a system that answered twice would send it.
    const twice = `${topic}/twice`;
    const { default: mqtt } = await import('mqtt');
    const echo = await mqtt.connectAsync(services.mqtt, { clientId: `echo-${randomBytes(4).toString('hex')}` });
    try {
      await echo.subscribeAsync(`${twice}/in`, { qos: 0 });
      echo.on('message', (_t, payload) => {
        echo.publish(twice, payload);
        echo.publish(twice, payload);
      });
      const result = await roundTrip({
        brokerUrl: services.mqtt,
        rate: 200,
        seconds: 0.25,
        leadInSeconds: 0.25,
        report: (seq) => ({ topic: `${twice}/in`, payload: JSON.stringify({ seq }) }),
        answerTopic: twice,
        correlate: 'seq',
        drainMs: 500,
      });
      assert.equal(result.received, 100);
      assert.equal(result.lost, 0);
      assert.equal(result.measured, 50);
    } finally {
      await echo.endAsync();
    }
  });

  test('answers matched by order split at the lead-in too', { skip: mosquittoSkip }, async () => {
    const result = await roundTrip({
      brokerUrl: services.mqtt,
      rate: 200,
      seconds: 0.25,
      leadInSeconds: 0.25,
      report: (seq) => ({ topic: `${topic}/order`, payload: `r${seq}` }),
      answerTopic: `${topic}/order`,
      correlate: 'order',
      drainMs: 500,
    });
    assert.equal(result.sent, 100);
    assert.equal(result.received, 100);
    assert.equal(result.measured, 50);
    assert.equal(result.leadIn?.count, 50);
  });

  test('without a lead-in every answer is measured', { skip: mosquittoSkip }, async () => {
    let started = 0;
    const result = await roundTrip({
      brokerUrl: services.mqtt,
      rate: 200,
      seconds: 0.25,
      report,
      answerTopic: topic,
      correlate: 'seq',
      drainMs: 500,
      onStart: () => started++,
    });
    assert.equal(started, 1);
    assert.equal(result.sent, 50);
    assert.equal(result.measured, 50);
    assert.equal(result.latency.count, 50);
    assert.equal(result.leadIn, null);
  });
});
