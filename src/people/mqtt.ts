import type { MqttLink } from '../adapters/mqtt/connection.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import type { Outcome } from './receiver.ts';

export interface OwnTracksMqttListenerOptions {
  link: MqttLink;
  /** The app's base topic, `owntracks` unless the user changed it. */
  prefix: string;
  clock: Clock;
  log: Logger;
  /**
   * Acts on one message from `<prefix>/<user>/<device>[/<kind>]`; `topic` is the whole topic, so
   * the household whose namespace it came in can be told.
   */
  deliver: (username: string, device: string, payload: Buffer, topic: string) => Promise<Outcome>;
}

/** The sub-topics a phone publishes that Triad acts on; `cmd`, `step`, `dump`… are not subscribed. */
const SUBTOPICS = ['', '/event', '/waypoint', '/waypoints'];

/**
 * OwnTracks MQTT mode on the hub's broker. Messages are handled one at a time in arrival order,
 * so a location and the transition it triggered are judged in the order the phone sent them.
 */
export class OwnTracksMqttListener {
  private unsubscribes: Array<() => Promise<void>> = [];
  private queue: Promise<void> = Promise.resolve();
  /** Last time each reason was logged, so one misconfigured phone cannot flood the log. */
  private readonly logged = new Map<string, number>();

  constructor(private readonly options: OwnTracksMqttListenerOptions) {}

  async start(): Promise<void> {
    const { link, prefix } = this.options;
    for (const sub of SUBTOPICS) {
      this.unsubscribes.push(
        await link.subscribe(`${prefix}/+/+${sub}`, (topic, payload) => this.enqueue(topic, payload)),
      );
    }
  }

  async stop(): Promise<void> {
    const unsubscribes = this.unsubscribes;
    this.unsubscribes = [];
    for (const unsubscribe of unsubscribes) await unsubscribe().catch(() => undefined);
    await this.queue;
  }

  private enqueue(topic: string, payload: Buffer): void {
    // The prefix may span levels (`households/+/owntracks` for another household's phones).
    const levels = topic.split('/').slice(this.options.prefix.split('/').length);
    const [username, device] = levels;
    if (!username || !device) return;
    this.queue = this.queue
      .then(() => this.options.deliver(username, device, payload, topic))
      .then((outcome) => {
        if (!outcome.accepted) this.note(username, outcome.reason, topic);
      })
      .catch((error: unknown) => this.options.log.error('OwnTracks message failed', { topic, error }));
  }

  private note(username: string, reason: string, topic: string): void {
    const key = `${username}\u0000${reason}`;
    const now = this.options.clock.now();
    const last = this.logged.get(key);
    if (last !== undefined && now - last < 60_000) return;
    if (this.logged.size > 10_000) this.logged.clear();
    this.logged.set(key, now);
    this.options.log.info('OwnTracks message not used', { topic, reason });
  }
}
