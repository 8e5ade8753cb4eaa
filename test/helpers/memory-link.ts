import { type MqttHandler, type MqttLink, topicMatches } from '../../src/adapters/mqtt/connection.ts';

/**
 * An in-memory broker link for adapter tests without a broker: what the adapter subscribes to is
 * what a test can deliver. Objects are delivered as their JSON, strings as their text.
 */
export class MemoryLink implements MqttLink {
  private readonly handlers: Array<{ filter: string; handler: MqttHandler }> = [];

  async subscribe(filter: string, handler: MqttHandler) {
    const entry = { filter, handler };
    this.handlers.push(entry);
    return async () => {
      this.handlers.splice(this.handlers.indexOf(entry), 1);
    };
  }

  async publish(): Promise<void> {}

  deliver(topic: string, payload: Buffer | string | object, options: { retain?: boolean } = {}): void {
    const body = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    for (const { filter, handler } of [...this.handlers]) {
      if (topicMatches(filter, topic)) handler(topic, body, { retain: options.retain ?? false });
    }
  }
}
