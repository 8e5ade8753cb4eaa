import type { Command } from '../../core/events.ts';
import type { Thing } from '../../model/thing.ts';
import type { Adapter, AdapterContext } from '../adapter.ts';
import type { MqttHandler, MqttLink } from './connection.ts';
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

  subscribe(filter: string, handler: MqttHandler): Promise<() => Promise<void>> {
    const prefix = this.namespace;
    return this.link.subscribe(prefix + filter, (topic, payload, meta) => {
      if (topic.startsWith(prefix)) handler(topic.slice(prefix.length), payload, meta);
    });
  }

  publish(topic: string, payload: string | Buffer, options?: { retain?: boolean; qos?: 0 | 1 }): Promise<void> {
    return this.link.publish(this.namespace + topic, payload, options);
  }
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
      link: MqttLink;
      /** The topic prefix for a household, or null for plain topics (the default household). */
      namespaceOf: (householdId: string) => string | null;
    },
  ) {}

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    for (const discovery of this.byHousehold.values()) await discovery.start(ctx);
  }

  /** Starts discovery for a household (at start, or when one is created); idempotent. */
  async addHousehold(householdId: string): Promise<void> {
    if (this.byHousehold.has(householdId)) return;
    const namespace = this.options.namespaceOf(householdId);
    const link = namespace ? new NamespacedLink(this.options.link, namespace) : this.options.link;
    const discovery = new HomeAssistantDiscovery({ link, householdId });
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
