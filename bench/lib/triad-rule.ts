import { performance } from 'node:perf_hooks';
import type { Broker } from './brokers.ts';
import { connectClient } from './mqtt-load.ts';
import { sleep } from './processes.ts';
import { RULE, ruleReport, sensorId } from './rule.ts';
import { automationEnginePresent, type NotMeasured, type RuleRunner } from './systems.ts';
import { discover, fanConfig, forget, sensorConfig, startTriad, type TriadProcess } from './triad.ts';

// The fan that Triad discovers reports where the benchmark's fan confirms (RULE.fanConfirmation).
if (JSON.parse(fanConfig('bench-fan').payload).state_topic !== RULE.fanConfirmation.topic)
  throw new Error("the bench fan's state topic and RULE.fanConfirmation disagree");

const DEVICES = [
  ...Array.from({ length: RULE.sensors }, (_, i) => ({ ...sensorConfig(sensorId(i)), name: `Bench ${sensorId(i)}` })),
  { ...fanConfig('bench-fan'), name: 'Bench bench-fan' },
];

class SetupError extends Error {}

/** One fresh hub with the devices discovered and the rule posted; returns it and the mode it took. */
async function launch(
  broker: Broker,
  options: { nodeFlags?: string[]; bin?: string },
): Promise<{ hub: TriadProcess; mode: string }> {
  const hub = await startTriad({ brokerUrl: broker.url, ...options });
  try {
    const ids = await discover(hub, broker.url, DEVICES);
    const sensor = ids.get(`Bench ${sensorId(0)}`);
    // The rule as a user writes it: the default mode (single) and max. A run that only sends a
    // command ends within its report's handling, so no report finds the rule busy and is skipped;
    // a skipped report would show here as a lost message.
    const rule = {
      id: 'bench-fan-when-hot',
      name: 'Bench: fan on when the sensor is hot',
      triggers: [{ trigger: 'state', thing: sensor, property: 'sensor.temperature' }],
      conditions: [
        { condition: 'numeric_state', thing: sensor, property: 'sensor.temperature', above: RULE.threshold },
      ],
      actions: [{ action: 'turn_on', thing: ids.get('Bench bench-fan') }],
    };
    const response = await hub.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
    if (response.status !== 201 && response.status !== 200)
      throw new SetupError(`Triad refused the rule: ${response.status} ${(await response.text()).slice(0, 200)}`);
    const created = (await response.json()) as { automation?: { mode?: string | null } };
    const mode = created.automation?.mode;
    const reason = await ruleFires(broker.url);
    if (reason) throw new SetupError(reason);
    return { hub, mode: mode ?? 'single' };
  } catch (error) {
    await hub.stop();
    throw error;
  }
}

/**
 * Triad running the benchmark's rule as a real user would set it up: `triad start` on the same
 * broker, the sensors and the fan joining by Home Assistant discovery, the rule posted to
 * `/api/automations`, the fan confirming each command. Twin, history and traces stay on. Triad's
 * command payload is the fan's own `ON`, which cannot carry the report's number, so answers are
 * matched to reports in order. After an overloaded trial the hub is replaced by a fresh one, so
 * one rate's backlog is not charged to the next.
 */
export async function triadRule(
  broker: Broker,
  options: { nodeFlags?: string[]; bin?: string } = {},
): Promise<RuleRunner | NotMeasured> {
  if (!automationEnginePresent()) return { notMeasured: 'automation engine not present (src/automation/index.ts)' };
  let current: { hub: TriadProcess; mode: string };
  try {
    current = await launch(broker, options);
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    return { notMeasured: error instanceof SetupError ? message : `Triad rule could not be set up: ${message}` };
  }
  return {
    name: `Triad (mode ${current.mode})`,
    get pids() {
      return [current.hub.process.pid];
    },
    answerTopic: RULE.commandTopic,
    correlate: 'order',
    confirm: RULE.fanConfirmation,
    async reset() {
      await current.hub.stop();
      await forget(
        broker.url,
        DEVICES.map((d) => d.topic),
      );
      current = await launch(broker, options);
    },
    stop: async () => {
      await current.hub.stop();
      await forget(
        broker.url,
        DEVICES.map((d) => d.topic),
      );
    },
  };
}

/** Sends a few reports and checks a command comes back, so a broken setup is reported, not timed. */
async function ruleFires(brokerUrl: string): Promise<string | null> {
  const client = await connectClient(brokerUrl, 'rule-check');
  try {
    let answers = 0;
    client.on('message', () => {
      answers++;
      client.publish(RULE.fanConfirmation.topic, RULE.fanConfirmation.payload, { qos: 0 });
    });
    await client.subscribeAsync(RULE.commandTopic, { qos: 0 });
    // Seq numbers far from the trial's, so the check's values differ from the first trial report.
    for (let i = 0; i < 3; i++) {
      const { topic, payload } = ruleReport(500 + i);
      await client.publishAsync(topic, payload, { qos: 0 });
    }
    const deadline = performance.now() + 5000;
    while (answers < 3 && performance.now() < deadline) await sleep(20);
    // Let any late command arrive now rather than be counted against the first trial.
    await sleep(300);
    return answers >= 1 ? null : 'the rule was accepted but no command reached the broker within 5 s';
  } finally {
    await client.endAsync();
  }
}
