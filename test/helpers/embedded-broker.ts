import { after, before } from 'node:test';
import { EmbeddedBroker } from '../../src/adapters/mqtt/broker.ts';

/**
 * An embedded MQTT broker on a loopback port of its own for the tests of the suite this is
 * called in: started before them, stopped after them. Answers how to reach it once started.
 */
export function suiteBroker(): () => EmbeddedBroker {
  let broker: EmbeddedBroker | null = null;
  before(async () => {
    broker = new EmbeddedBroker({ port: 0, host: '127.0.0.1' });
    await broker.start();
  });
  after(async () => {
    await broker?.stop();
  });
  return () => {
    if (!broker) throw new Error('the suite broker has not started');
    return broker;
  };
}
