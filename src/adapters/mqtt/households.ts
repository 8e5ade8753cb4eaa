import type { Command } from '../../core/events.ts';
import type { Thing } from '../../model/thing.ts';
import type { Adapter, AdapterContext } from '../adapter.ts';
import type { BrokerSession } from './broker.ts';
import type { MqttHandler, MqttLink, MqttQos } from './connection.ts';
import { HomeAssistantDiscovery } from './discovery.ts';

/**
 * The hub's MQTT link as one household sees it: every topic lives under `namespace` on the wire
 * (e.g. `households/hh_1/`) and without it here, so discovery code written for plain topics
 * serves any household unchanged.
 */
export class NamespacedLink implements MqttLink {
  constructor(
    private readonly link: MqttLink,
    private readonly namespace: string,
  ) {}

  subscribe(filter: string, handler: MqttHandler, options?: { qos?: MqttQos }): Promise<() => Promise<void>> {
    const prefix = this.namespace;
    return this.link.subscribe(
      prefix + filter,
      (topic, payload, meta) => {
        if (topic.startsWith(prefix)) handler(topic.slice(prefix.length), payload, meta);
      },
      options,
    );
  }

  publish(topic: string, payload: string | Buffer, options?: { retain?: boolean; qos?: MqttQos }): Promise<void> {
    return this.link.publish(this.namespace + topic, payload, options);
  }
}

/** The broker's own topics, which name every household's clients (on a broker such as Mosquitto, where the hub may read them). */
const BROKER_TOPICS = '$SYS/';

/**
 * The default household's view of the hub's MQTT link: plain topics, without any other
 * household's (those live under `households/<id>/` on the wire) nor the broker's `$SYS` ones. A
 * filter such as `#` would match the others' too, so what arrives under `root` is held back rather
 * than trusted to the filter.
 */
export class DefaultHouseholdLink implements MqttLink {
  constructor(
    private readonly link: MqttLink,
    private readonly root: string,
  ) {}

  subscribe(filter: string, handler: MqttHandler, options?: { qos?: MqttQos }): Promise<() => Promise<void>> {
    return this.link.subscribe(
      filter,
      (topic, payload, meta) => {
        if (!topic.startsWith(this.root) && !topic.startsWith(BROKER_TOPICS)) handler(topic, payload, meta);
      },
      options,
    );
  }

  publish(topic: string, payload: string | Buffer, options?: { retain?: boolean; qos?: MqttQos }): Promise<void> {
    if (topic.startsWith(this.root))
      return Promise.reject(new Error(`topics under ${this.root} are other households'`));
    return this.link.publish(topic, payload, options);
  }
}

/**
 * The hub's MQTT link as `householdId` sees it: its own topics, by their plain names, and no
 * other household's.
 */
export function householdLink(link: MqttLink, namespace: string | null, root: string): MqttLink {
  return namespace ? new NamespacedLink(link, namespace) : new DefaultHouseholdLink(link, root);
}

/**
 * Home Assistant discovery for every household on one hub, as the single `mqtt` adapter that
 * things name: one discovery per household, each on its own topic namespace, and commands go to
 * the discovery of the thing's household.
 */
export class HouseholdDiscovery implements Adapter {
  readonly name = 'mqtt';
  private readonly byHousehold = new Map<string, HomeAssistantDiscovery>();
  private ctx: AdapterContext | null = null;

  constructor(
    private readonly options: {
      /** The hub's link as a household sees it (see householdLink): its own topics, by their plain names. */
      linkFor: (householdId: string) => MqttLink;
      /** The account a household's config topic (by its plain name) came from; see HomeAssistantDiscoveryOptions. */
      announcer?: (householdId: string, topic: string) => BrokerSession | undefined;
    },
  ) {}

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    for (const discovery of this.byHousehold.values()) await discovery.start(ctx);
  }

  /** Starts discovery for a household (at start, or when one is created); idempotent. */
  async addHousehold(householdId: string): Promise<void> {
    if (this.byHousehold.has(householdId)) return;
    // The default household's too: a device of it that named another household's topic as its
    // state topic would otherwise read that household's device.
    const { announcer } = this.options;
    const discovery = new HomeAssistantDiscovery({
      link: this.options.linkFor(householdId),
      householdId,
      ...(announcer && { announcer: (topic: string) => announcer(householdId, topic) }),
    });
    this.byHousehold.set(householdId, discovery);
    if (this.ctx) await discovery.start(this.ctx);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.byHousehold.values()].map((d) => d.stop()));
  }

  async execute(command: Command, thing: Thing): Promise<void> {
    const discovery = this.byHousehold.get(thing.householdId);
    if (!discovery) throw new Error(`no MQTT discovery runs for household ${thing.householdId}`);
    await discovery.execute(command, thing);
  }
}
