import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { BrokerSession } from '../adapters/mqtt/broker.ts';
import { topicMatches } from '../adapters/mqtt/connection.ts';
import type { Clock } from '../core/clock.ts';
import { badRequest, conflict, HubError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import { Watchers } from '../core/watchers.ts';
import { slugify } from '../model/thing.ts';
import type { AuditActor, Store } from '../store/store.ts';

/** Topic filters a device account may use: its own state and discovery out, its commands in. */
export interface TopicAcl {
  publish: string[];
  subscribe: string[];
}

/** An MQTT account for one device (or one bridge, such as a Zigbee2MQTT process) in one household. */
export interface MqttDevice extends TopicAcl {
  id: string;
  householdId: string;
  name: string;
  username: string;
  /**
   * The topic its default lists were made from. Absent from accounts made before it was kept:
   * loading them recovers it from the lists (see aclRefusal).
   */
  baseTopic?: string;
  /** sha256 of the password: it is 256 random bits, so a fast hash is as safe as scrypt here. */
  secretHash: string;
  createdAt: number;
}

/** What an account that is not a device (an OwnTracks phone) is allowed once its password checks out. */
export interface BrokerLogin extends TopicAcl {
  householdId: string;
  actor: AuditActor;
}

/** Asks another part of the hub (people's trackers) whether a user name and password are theirs. */
export type BrokerLoginResolver = (username: string, password: string) => Promise<BrokerLogin | null>;

/** The namespace every non-default household's MQTT topics live under, hidden from its own clients. */
export const HOUSEHOLDS_TOPIC_ROOT = 'households';

export function householdNamespace(householdId: string, defaultHouseholdId: string): string | null {
  return householdId === defaultHouseholdId ? null : `${HOUSEHOLDS_TOPIC_ROOT}/${householdId}/`;
}

/**
 * The default ACL for a Zigbee2MQTT-style device under `<base>`: it publishes its state,
 * availability and its Home Assistant discovery configs (node id = its name's slug), and it
 * receives only its own `set`/`get` commands and Home Assistant's `status`.
 */
export function defaultAcl(baseTopic: string, nodeId: string): TopicAcl {
  return {
    publish: [
      baseTopic,
      `${baseTopic}/availability`,
      `homeassistant/+/${nodeId}/+/config`,
      `homeassistant/+/${nodeId}/config`,
    ],
    subscribe: [`${baseTopic}/set`, `${baseTopic}/set/+`, `${baseTopic}/get`, 'homeassistant/status'],
  };
}

function checkFilters(filters: unknown, what: string): string[] {
  if (!Array.isArray(filters) || filters.length > 50)
    throw badRequest(`${what} must be a list of up to 50 topic filters`);
  for (const f of filters) {
    if (typeof f !== 'string' || f.length === 0 || f.length > 200 || f.includes('\u0000') || f.startsWith('$')) {
      throw badRequest(`${what}: ${JSON.stringify(f)} is not a topic filter`);
    }
    if (f.split('/')[0] === HOUSEHOLDS_TOPIC_ROOT) throw badRequest(`${what}: topics under households/ are the hub's`);
    if (
      f
        .split('/')
        .some(
          (level, i, all) =>
            (level.includes('#') && (level !== '#' || i !== all.length - 1)) || (level.includes('+') && level !== '+'),
        )
    ) {
      throw badRequest(`${what}: ${JSON.stringify(f)} uses + or # inside a level`);
    }
  }
  return filters as string[];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * Who may use the embedded broker: device accounts per household with topic ACLs, the hub's own
 * client (a credential made at each start and never written down), and whatever the resolvers
 * vouch for (OwnTracks phones). Anonymous clients only when the owner chose `allowAnonymous`.
 */
export class BrokerAccess {
  readonly hubLogin = {
    username: `triad-hub-${randomBytes(4).toString('hex')}`,
    password: randomBytes(32).toString('base64url'),
  };
  private readonly devices = new Map<string, MqttDevice>();
  /** How to cut off each connected device client, by device user name (see removeDevice). */
  private readonly connected = new Watchers<string>();
  /**
   * The same for clients a resolver vouched for (OwnTracks phones), by user name: the broker checks
   * a subscription only when it is made, so a phone whose tracker is removed would otherwise keep
   * receiving the household's locations on `owntracks/#` until it reconnected.
   */
  private readonly resolvedConnected = new Watchers<string>();
  private readonly resolvers: BrokerLoginResolver[] = [];

  constructor(
    private readonly options: {
      store: Store;
      clock: Clock;
      defaultHouseholdId: string;
      allowAnonymous: boolean;
      /** Told about every refused publish or subscription. */
      onRefused?: (login: BrokerLogin, what: 'publish' | 'subscribe', topic: string) => void;
      log?: Logger;
    },
  ) {}

  /**
   * Reads the stored device accounts. One that today's checks would refuse (made before a name or
   * base topic holding + or # was refused, when those became wildcards in its ACL) keeps its
   * record but gets no topic at all, and the log says to make it again: its lists cannot be
   * trusted, and guessing narrower ones could hand it another device's topics.
   */
  async load(): Promise<void> {
    for (const record of await this.options.store.listAccountRecords('device')) {
      const device = record.body as unknown as MqttDevice;
      if (typeof device?.username !== 'string') {
        this.options.log?.error('a stored MQTT device account has no user name; it cannot log in', { id: record.id });
        continue;
      }
      const refusal = aclRefusal(device);
      if (refusal === null) {
        this.devices.set(device.username, device);
        continue;
      }
      this.options.log?.error(
        `MQTT device account ${JSON.stringify(device.name)} must be re-created: ${refusal}. Until it is, it may not publish or subscribe to any topic`,
        { id: device.id, username: device.username, householdId: device.householdId },
      );
      this.devices.set(device.username, { ...device, publish: [], subscribe: [] });
    }
  }

  /** Adds a source of broker logins; returns the function that removes it. */
  addResolver(resolver: BrokerLoginResolver): () => void {
    this.resolvers.push(resolver);
    return () => {
      const i = this.resolvers.indexOf(resolver);
      if (i >= 0) this.resolvers.splice(i, 1);
    };
  }

  async createDevice(
    householdId: string,
    request: { name: string; baseTopic?: string; publish?: unknown; subscribe?: unknown },
  ): Promise<{ device: MqttDevice; password: string }> {
    const slug = slugify(request.name) || 'device';
    const base = request.baseTopic ?? `zigbee2mqtt/${request.name}`;
    checkFilters([base], 'baseTopic');
    // The base is a topic, not a filter: a + or # in it (a device named "#") would have let the
    // device publish on every other device's topics and receive their commands.
    if (/[+#]/.test(base)) {
      throw badRequest(
        request.baseTopic === undefined
          ? `name: ${JSON.stringify(request.name)} makes the base topic ${JSON.stringify(base)}, and a topic may not hold + or #; give a baseTopic`
          : `baseTopic: ${JSON.stringify(base)} is a topic and may not hold + or #`,
      );
    }
    const acl = defaultAcl(base, slug);
    const username = `${slug}.${randomBytes(3).toString('hex')}`;
    if (this.devices.has(username)) throw conflict('try again: that user name was just taken');
    const password = randomBytes(24).toString('base64url');
    const now = this.options.clock.now();
    const device: MqttDevice = {
      id: newId(now, 'dev_'),
      householdId,
      name: request.name,
      username,
      baseTopic: base,
      secretHash: sha256(password).toString('hex'),
      publish: request.publish === undefined ? acl.publish : checkFilters(request.publish, 'publish'),
      subscribe: request.subscribe === undefined ? acl.subscribe : checkFilters(request.subscribe, 'subscribe'),
      createdAt: now,
    };
    await this.options.store.saveAccountRecord({
      kind: 'device',
      householdId,
      id: device.id,
      body: device as unknown as Record<string, unknown>,
      createdAt: now,
    });
    this.devices.set(username, device);
    return { device, password };
  }

  listDevices(householdId: string): MqttDevice[] {
    return [...this.devices.values()].filter((d) => d.householdId === householdId);
  }

  /** Removes a device account, and cuts off the clients connected with it. */
  async removeDevice(householdId: string, id: string): Promise<void> {
    const device = this.listDevices(householdId).find((d) => d.id === id);
    if (!device) throw notFound(`device ${JSON.stringify(id)}`);
    await this.options.store.deleteAccountRecord('device', householdId, id);
    this.devices.delete(device.username);
    this.connected.end(device.username);
  }

  /** The session for a connecting client, or null to refuse it. */
  async authenticate(username: string | undefined, password: Buffer | undefined): Promise<BrokerSession | null> {
    if (username === undefined || username === '') {
      return this.options.allowAnonymous && !password ? openSession() : null;
    }
    const secret = password?.toString('utf8') ?? '';
    if (username.length > 200 || secret.length > 200) return null;
    if (username === this.hubLogin.username) {
      return timingSafeEqual(sha256(secret), sha256(this.hubLogin.password)) ? openSession() : null;
    }
    const device = this.devices.get(username);
    if (device) {
      if (!timingSafeEqual(sha256(secret), Buffer.from(device.secretHash, 'hex'))) return null;
      const session = this.deviceSession(device);
      session.onRevoke = (end) => this.connected.add(username, end);
      return session;
    }
    for (const resolver of this.resolvers) {
      const login = await resolver(username, secret);
      if (!login) continue;
      const session = this.sessionFor(login);
      session.onRevoke = (end) => this.resolvedConnected.add(username, end);
      return session;
    }
    return null;
  }

  /**
   * Cuts off the clients connected with a login a resolver vouched for, once that login is
   * withdrawn (a tracker removed): its next connection is asked again, and refused.
   */
  disconnectLogin(username: string): void {
    this.resolvedConnected.end(username);
  }

  /** Whether a client is connected with a login a resolver vouched for (a phone in MQTT mode). */
  isLoggedIn(username: string): boolean {
    return this.resolvedConnected.has(username);
  }

  /**
   * The device account whose own topics hold `topic` (as on the wire, under its household's
   * namespace), for a discovery config the broker saw no client publish since it started (kept
   * retained from before): it is taken as that account's, not as the hub's trusted side's.
   */
  accountFor(topic: string): BrokerSession | undefined {
    for (const device of this.devices.values()) {
      const session = this.deviceSession(device);
      const { namespace } = session;
      if (namespace !== null && !topic.startsWith(namespace)) continue;
      if (session.mayPublish(namespace === null ? topic : topic.slice(namespace.length))) return session;
    }
    return undefined;
  }

  /** The session of the device account a BrokerSession.account names, or undefined once it is removed. */
  accountSession(account: string): BrokerSession | undefined {
    for (const device of this.devices.values()) if (accountName(device) === account) return this.deviceSession(device);
    return undefined;
  }

  /**
   * A device account's session, which names the account: what it announces is its own (see
   * BrokerSession.account). Logins a resolver vouched for name none: an OwnTracks phone may
   * publish no discovery config, and the demo's simulated home is the hub's own (its login is
   * made afresh at each start, so it could not be told apart from one run to the next anyway).
   */
  private deviceSession(device: MqttDevice): BrokerSession {
    const session = this.sessionFor({
      householdId: device.householdId,
      publish: device.publish,
      subscribe: device.subscribe,
      actor: { kind: 'device', id: device.id, name: device.name },
    });
    session.account = accountName(device);
    return session;
  }

  private sessionFor(login: BrokerLogin): BrokerSession {
    const namespace = householdNamespace(login.householdId, this.options.defaultHouseholdId);
    // In the default household topics are used as they are, so the hub's own namespace root is off limits.
    const ours = (topic: string) => namespace !== null || topic.split('/')[0] !== HOUSEHOLDS_TOPIC_ROOT;
    return {
      namespace,
      // A namespaced client receives its namespace's topics only (the broker strips it off them).
      hidden: namespace === null ? `${HOUSEHOLDS_TOPIC_ROOT}/` : null,
      mayPublish: (topic) => ours(topic) && login.publish.some((f) => topicMatches(f, topic)),
      // A filter is allowed when the ACL allows it exactly or it is narrower than an allowed filter.
      maySubscribe: (filter) => ours(filter) && login.subscribe.some((f) => f === filter || filterWithin(filter, f)),
      refused: (what, topic) => this.options.onRefused?.(login, what, topic),
    };
  }
}

/**
 * Why a stored device account may not keep its topic lists (what createDevice would refuse of
 * it now), or null. Its base topic is the one kept with it, or else the one its lists were made
 * from by defaultAcl; lists an owner gave are judged as filters.
 */
function aclRefusal(device: MqttDevice): string | null {
  if (!Array.isArray(device.publish) || !Array.isArray(device.subscribe) || typeof device.name !== 'string') {
    return 'its stored record is incomplete';
  }
  try {
    checkFilters(device.publish, 'publish');
    checkFilters(device.subscribe, 'subscribe');
  } catch (error) {
    if (error instanceof HubError) return `its ${error.message}`;
    throw error;
  }
  const bases = device.baseTopic !== undefined ? [device.baseTopic] : defaultBasesOf(device);
  const wild = bases.find((base) => typeof base !== 'string' || /[+#]/.test(base));
  // Lists in none of the default forms were the owner's own, judged as filters above: the name
  // never became a topic of theirs, whatever it holds.
  if (wild !== undefined) return `its base topic ${JSON.stringify(wild)} holds + or #, a wildcard in its ACL`;
  return null;
}

/** The base topics defaultAcl made an account's publish and subscribe lists from (none for lists an owner gave). */
function defaultBasesOf(device: TopicAcl): string[] {
  const bases: string[] = [];
  const [published, , discovery] = device.publish;
  // The node id is read from the list itself, so an account survives a change to slugify.
  const nodeId = typeof discovery === 'string' ? discovery.split('/')[2] : undefined;
  if (nodeId !== undefined && sameList(device.publish, defaultAcl(published, nodeId).publish)) bases.push(published);
  const [commands] = device.subscribe;
  if (commands?.endsWith('/set')) {
    const base = commands.slice(0, -'/set'.length);
    if (sameList(device.subscribe, defaultAcl(base, '').subscribe)) bases.push(base);
  }
  return bases;
}

/** How a device account is named to the broker and discovery (BrokerSession.account). */
function accountName(device: MqttDevice): string {
  return `device:${device.id}`;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/**
 * Everything allowed, no namespace, every household's topics seen: the hub's own client (it reads
 * each household under its namespace), and anonymous clients when allowed (an open broker).
 */
function openSession(): BrokerSession {
  return { namespace: null, hidden: null, mayPublish: () => true, maySubscribe: () => true };
}

/** Whether every topic `inner` matches is also matched by `outer`. */
function filterWithin(inner: string, outer: string): boolean {
  const a = inner.split('/');
  const b = outer.split('/');
  // As in MQTT matching: a wildcard first level does not reach topics starting with `$` ($SYS).
  if (a[0].startsWith('$') && (b[0] === '#' || b[0] === '+')) return false;
  for (let i = 0; i < a.length; i++) {
    if (b[i] === '#') return true;
    if (i >= b.length) return false;
    if (b[i] === '+') {
      if (a[i] === '#') return false;
      continue;
    }
    if (a[i] !== b[i]) return false;
  }
  return a.length === b.length;
}
