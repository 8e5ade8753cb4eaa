// The least any Node.js hub can do for the benchmark's rule: receive the sensor report, check the
// condition, publish the command. Bare MQTT.js with Nagle's algorithm off, alone in its process.
import type { Socket } from 'node:net';
import mqtt from 'mqtt';

const [url, reportFilter, commandTopic, threshold] = process.argv.slice(2);
const above = Number(threshold);
const client = mqtt.connect(url, { clientId: `bench-ideal-relay-${process.pid}`, reconnectPeriod: 0, clean: true });
client.on('connect', () => {
  (client.stream as Socket | undefined)?.setNoDelay?.(true);
  client.subscribe(reportFilter, { qos: 0 }, (error) => {
    if (error) throw error;
    process.stdout.write('ideal relay ready\n');
  });
});
client.on('message', (_topic, payload) => {
  const report = JSON.parse(payload.toString()) as { temperature?: number; seq?: number };
  if (typeof report.temperature === 'number' && report.temperature > above) {
    client.publish(commandTopic, JSON.stringify({ state: 'ON', seq: report.seq }), { qos: 0 });
  }
});
client.on('error', (error) => {
  process.stderr.write(`ideal relay: ${error.message}\n`);
  process.exit(1);
});
process.on('SIGTERM', () => client.end(true, () => process.exit(0)));
