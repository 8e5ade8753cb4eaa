/**
 * The one rule every system runs: "when a temperature report is above 25 °C, turn the fan on".
 * Every report is above the threshold and differs from the one before, so every report must
 * produce exactly one command; a missing command is a lost message.
 */
export const RULE = {
  threshold: 25,
  reportFilter: 'bench/sensor/+',
  commandTopic: 'bench/fan/set',
  /**
   * The fan's answer to every command it receives, as a real fan reports its new state. It is part
   * of the benchmark's world, not of a system: it is sent whichever system commanded the fan, so
   * the broker and the machine carry the same traffic in every system's trial. Triad listens to it
   * (it closes the command's lifecycle); the ideal relay and Node-RED do not subscribe to it.
   */
  fanConfirmation: { topic: 'bench/fan/bench-fan/state', payload: 'ON' },
  /** One sensor keeps the rule within the contract's plainest shape: a state trigger and a numeric condition on it. */
  sensors: 1,
} as const;

export function sensorId(i: number): string {
  return `bench-s${i}`;
}

/** Report number `seq`: round-robin over the sensors, a changing value above the threshold. */
export function ruleReport(seq: number): { topic: string; payload: string } {
  const temperature = RULE.threshold + 0.01 + (seq % 1000) / 100;
  return {
    topic: `bench/sensor/${sensorId(seq % RULE.sensors)}`,
    payload: `{"temperature":${temperature.toFixed(2)},"seq":${seq}}`,
  };
}
