import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthorizeForwardHandler, type Client } from 'aedes';
import { urlHost } from '../../core/listen-address.ts';
import type { Logger } from '../../core/log.ts';
import type { RetainedStore } from './retained-store.ts';

type ForwardedPacket = Parameters<AuthorizeForwardHandler>[1];

/**
 * The broker's own topics: who is connected, with which client id, subscribed to what. They name
 * every household's clients, so no client reads them, whatever its household; the hub has no use
 * for them either.
 */
const SYS_PREFIX = '$SYS/';
const SYS_ROOT = '$SYS';

/** How Home Assistant discovery config topics end: the ones whose sender the broker notes. */
const CONFIG_SUFFIX = '/config';
/** Config topics whose sender is noted at most; real homes have a few thousand. */
const MAX_ANNOUNCERS = 100_000;

/**
 * The largest packet a client may send, counted after its 2 to 5 byte header: MQTT allows 256 MB,
 * which aedes would take whole into memory, keep retained and hand to every subscriber. The
 * biggest messages the hub reads are 128 KiB (OwnTracks; discovery configs and states stop at
 * 64 KiB), so this leaves room for topic and margin without letting one login fill the hub.
 */
export const MAX_PACKET_BYTES = 256 * 1024;

/** The part of mqtt-packet's parser (inside each aedes client) that reads a packet's length. */
interface PacketParser {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(error: Error): void;
}

/** What one connected client may do, decided once when it connects. */
export interface BrokerSession {
  /**
   * A topic prefix such as `households/hh_1/` under which every topic of this client lives,
   * invisible to it: what it publishes and subscribes is moved under the prefix, what it
   * receives has the prefix taken off. Null for clients that use topics as they are.
   */
  namespace: string | null;
  /**
   * For a client without a namespace: a topic prefix (`households/`) whose messages never reach
   * it, whatever filter it subscribed with, so `#` in the first household does not read the
   * others' (nor does any client get the broker's `$SYS` ones). Null for the clients that see every
   * household's topics (the hub's own, which serves every household).
   */
  hidden: string | null;
  /** Whether it may publish on a topic, as the client names it (before the namespace). */
  mayPublish(topic: string): boolean;
  /** Whether it may subscribe to a filter, as the client names it. */
  maySubscribe(filter: string): boolean;
  /** Called with every refused publish or subscription, for the audit trail. */
  refused?(what: 'publish' | 'subscribe', topic: string): void;
  /**
   * The account this client logged in with (`device:<id>`), so the hub can tell one device's
   * Home Assistant discovery configs from another's (see EmbeddedBroker.announcer). Absent for
   * the hub's own client and anonymous ones: what they publish is the hub's trusted side.
   */
  account?: string;
  /**
   * Takes the way to end this client's connection, for when its login is taken away (a device
   * account removed): a connected client is cut off then, not left to publish until it happens to
   * reconnect. Returns the function that forgets it once the client has gone.
   */
  onRevoke?(end: () => void): () => void;
}

/** Who may connect: a session for a client's user name and password, or null to refuse it. */
export type BrokerAuthenticator = (
  clientId: string,
  username: string | undefined,
  password: Buffer | undefined,
) => Promise<BrokerSession | null>;

export interface EmbeddedBrokerOptions {
  port: number;
  host?: string;
  /** Without it any client may connect and use any topic (tests and benchmarks only). */
  authenticate?: BrokerAuthenticator;
  /** Also listen for MQTT over TLS (mqtts) on this port, with these PEM files. */
  tls?: { port: number; cert: string; key: string };
  /** Where retained messages outlive a restart; without it they are kept in memory only. */
  retained?: RetainedStore;
  /**
   * The account whose own topics hold `topic` (as on the wire), asked for a config topic the
   * broker saw no client publish since it started: a retained config kept from before a restart.
   */
  accountFor?: (topic: string) => BrokerSession | undefined;
  /** The session of a device account by its BrokerSession.account, or undefined once it is removed. */
  accountSession?: (account: string) => BrokerSession | undefined;
  /** Told why a client was cut off (a packet over MAX_PACKET_BYTES). */
  log?: Logger;
}

/** The part of aedes's persistence the broker's retained messages go through. */
interface RetainedPersistence {
  storeRetained(packet: {
    cmd: 'publish';
    topic: string;
    payload: Buffer;
    qos: number;
    retain: boolean;
  }): Promise<void>;
}

/**
 * The part of aedes's persistence that holds the messages queued for a client that keeps its
 * session (`clean: false`) while it is away, handed over when it comes back.
 */
interface QueuePersistence {
  outgoingStream(client: Client): Readable;
}

/** A queued message's identity, as aedes's persistence matches it (broker and its counter). */
function queuedKey(packet: ForwardedPacket): string {
  const { brokerId, brokerCounter } = packet as { brokerId?: string; brokerCounter?: number };
  return `${brokerId}\u0000${brokerCounter}`;
}

/** A packet bound for a namespaced client, with the namespace taken off its topic. */
function stripped(packet: ForwardedPacket, namespace: string): ForwardedPacket | null {
  if (!packet.topic.startsWith(namespace)) return null;
  // A copy: the same packet object goes to every subscriber.
  return { ...packet, topic: packet.topic.slice(namespace.length) };
}

/** An MQTT broker inside the hub process, so a fresh install needs no Mosquitto. */
export class EmbeddedBroker {
  private servers: Server[] = [];
  private broker: Aedes | null = null;
  private boundPort = 0;
  private boundTlsPort = 0;
  private readonly sessions = new WeakMap<Client, BrokerSession>();
  /** The user name each client logged in with, for the log. */
  private readonly usernames = new WeakMap<Client, string>();
  /** For each connected client whose session can be revoked, what forgets its registration. */
  private readonly revocable = new WeakMap<Client, () => void>();
  /**
   * For each namespaced client catching up on its queue, the queued messages (queuedKey) already
   * handed over with the namespace taken off their topics (see keepNamespacesInQueues).
   */
  private readonly unqueued = new WeakMap<Client, Set<string>>();
  /**
   * The account that last published each discovery config topic (on the wire), or null for the
   * trusted side (a client without an account): the hub reads the config through its own
   * connection, where the sender is lost.
   */
  private readonly announcers = new Map<string, BrokerSession | null>();

  constructor(private readonly options: EmbeddedBrokerOptions) {}

  get port(): number {
    return this.boundPort;
  }

  /** The mqtts port, or 0 without TLS. */
  get tlsPort(): number {
    return this.boundTlsPort;
  }

  get url(): string {
    return `mqtt://${urlHost(this.options.host ?? '127.0.0.1')}:${this.boundPort}`;
  }

  async start(): Promise<void> {
    const broker = await Aedes.createBroker();
    if (this.options.retained)
      await this.keepRetained(
        (broker as unknown as { persistence: RetainedPersistence }).persistence,
        this.options.retained,
      );
    if (this.options.authenticate) this.enforce(broker, this.options.authenticate);
    const handle = (socket: Socket) => {
      socket.setNoDelay(true);
      this.limitPackets(broker.handle(socket), socket);
    };
    this.broker = broker;
    const plain = createServer(handle);
    this.boundPort = await listen(plain, this.options.port, this.options.host);
    this.servers.push(plain);
    const tls = this.options.tls;
    if (tls) {
      const [cert, key] = await Promise.all([readFile(tls.cert), readFile(tls.key)]);
      const secure = createTlsServer({ cert, key }, handle);
      this.boundTlsPort = await listen(secure, tls.port, this.options.host);
      this.servers.push(secure);
    }
  }

  /**
   * Every client authenticates; each publish and subscription is checked against its session,
   * and namespaced clients have their topics moved under their namespace in both directions.
   */
  private enforce(broker: Aedes, authenticate: BrokerAuthenticator): void {
    broker.authenticate = (client, username, password, done) => {
      authenticate(client.id, username, password).then(
        (session) => {
          if (session) {
            this.sessions.set(client, session);
            if (username) this.usernames.set(client, username);
            const forget = session.onRevoke?.(() => client.close());
            if (forget) this.revocable.set(client, forget);
            done(null, true);
          } else {
            done(Object.assign(new Error('bad user name or password'), { returnCode: 4 }) as never, false);
          }
        },
        () => done(Object.assign(new Error('authentication failed'), { returnCode: 3 }) as never, false),
      );
    };
    broker.on('clientDisconnect', (client) => {
      this.revocable.get(client)?.();
      this.revocable.delete(client);
    });
    broker.authorizePublish = (client, packet, done) => {
      // The broker's own messages ($SYS) have no client.
      if (!client) return done(null);
      const session = this.sessions.get(client);
      // $SYS is reserved, as aedes's own check (replaced here) had it: aedes acts on some of it,
      // e.g. `$SYS/<id>/new/clients` ends the connection of the client id it names.
      if (packet.topic.startsWith(SYS_PREFIX) || !session?.mayPublish(packet.topic)) {
        session?.refused?.('publish', packet.topic);
        return done(new Error(`publish to ${packet.topic} not allowed`));
      }
      if (session.namespace) packet.topic = session.namespace + packet.topic;
      if (packet.topic.endsWith(CONFIG_SUFFIX)) this.noteAnnouncer(packet.topic, session, packet.payload.length);
      done(null);
    };
    broker.authorizeSubscribe = (client, sub, done) => {
      const session = this.sessions.get(client);
      // A session kept by the broker (`clean: false`) comes back with the subscriptions it stored,
      // already under the namespace: they are checked, and kept, as the client first named them.
      const namespace = session?.namespace;
      const named = namespace && sub.topic.startsWith(namespace) ? sub.topic.slice(namespace.length) : sub.topic;
      if (named.split('/')[0] === SYS_ROOT || !session?.maySubscribe(named)) {
        session?.refused?.('subscribe', named);
        // A null subscription is refused with return code 128; the client stays connected.
        return done(null, null);
      }
      // Changed in place: aedes looks up retained messages by the same object's topic.
      if (namespace) sub.topic = namespace + named;
      done(null, sub);
    };
    broker.authorizeForward = (client, packet) => {
      const session = this.sessions.get(client);
      // Runs for every message to every subscriber (retained ones on subscribe too): prefix tests only.
      const topic = packet.topic;
      if (!session || topic.startsWith(SYS_PREFIX)) return null;
      if (session.namespace) {
        // A queued message comes here already stripped (keepNamespacesInQueues), once.
        const unqueued = this.unqueued.get(client);
        if (unqueued?.delete(queuedKey(packet))) return packet;
        return stripped(packet, session.namespace);
      }
      const hidden = session.hidden;
      return hidden !== null && topic.startsWith(hidden) ? null : packet;
    };
    this.keepNamespacesInQueues((broker as unknown as { persistence: QueuePersistence }).persistence);
  }

  /**
   * Cuts a client off as soon as a packet's header says it is over MAX_PACKET_BYTES, before its
   * body is read: aedes 1.x has no limit of its own, nor has the mqtt-packet parser it reads each
   * client with, so the parser's length step is checked here. Every other client carries on.
   */
  private limitPackets(client: Client, socket: Socket): void {
    const parser = (client as unknown as { _parser?: PacketParser })._parser;
    if (typeof parser?._parseLength !== 'function') {
      // An aedes or mqtt-packet of another shape: no client at all beats clients of any size.
      this.options.log?.error('MQTT client refused: this aedes cannot limit the size of packets');
      socket.destroy();
      return;
    }
    const parseLength = parser._parseLength.bind(parser);
    parser._parseLength = () => {
      if (!parseLength()) return false;
      const bytes = parser.packet.length;
      if (bytes <= MAX_PACKET_BYTES) return true;
      // Said once: the error ends the connection (aedes closes the client on a parser error).
      this.options.log?.warn(
        `MQTT client ${client.id ?? socket.remoteAddress} disconnected: it sent a packet of ${bytes} bytes, over the broker's limit of ${MAX_PACKET_BYTES}`,
        { clientId: client.id, username: this.usernames.get(client), bytes, limit: MAX_PACKET_BYTES },
      );
      parser._emitError(new Error(`packet of ${bytes} bytes is over the limit of ${MAX_PACKET_BYTES}`));
      return false;
    };
  }

  /** Notes who published a config topic: an account, or the trusted side; a cleared one is forgotten. */
  private noteAnnouncer(topic: string, session: BrokerSession, bytes: number): void {
    this.announcers.delete(topic);
    if (bytes === 0) return;
    // Bounded, the oldest forgotten first: an account may publish under a wildcard of its own,
    // and one forgotten is found again by accountFor, from the topics each account may use.
    if (this.announcers.size >= MAX_ANNOUNCERS) this.announcers.delete(this.announcers.keys().next().value as string);
    this.announcers.set(topic, session.account ? session : null);
  }

  /**
   * The account a discovery config on `topic` (as on the wire) came from, as far as the broker
   * knows: the one that last published it, or for one kept from before a restart the account
   * whose own topics hold it. Undefined for the trusted side (the hub's login, anonymous clients).
   */
  announcer(topic: string): BrokerSession | undefined {
    const known = this.announcers.get(topic);
    return known === undefined ? this.options.accountFor?.(topic) : (known ?? undefined);
  }

  /**
   * A namespaced client that kept its session gets the QoS 1 and 2 messages that came while it was
   * away with their topics as it knows them, as it gets live ones. aedes hands queued messages over
   * by another path than live ones: it asks authorizeForward only whether to send, and sends the
   * message as it was queued, `households/<id>/` and all, a topic the device never subscribed to
   * under that name (a command to a second household's light would never be obeyed). So the
   * queue is read out stripped of the namespace, and authorizeForward lets those through as
   * they are.
   */
  private keepNamespacesInQueues(persistence: QueuePersistence): void {
    const queue = persistence.outgoingStream.bind(persistence);
    persistence.outgoingStream = (client) => {
      const namespace = this.sessions.get(client)?.namespace;
      if (!namespace) return queue(client);
      const unqueued = new Set<string>();
      this.unqueued.set(client, unqueued);
      return queue(client).map((packet: ForwardedPacket) => {
        const copy = stripped(packet, namespace);
        if (!copy) return packet;
        unqueued.add(queuedKey(copy));
        return copy;
      });
    };
  }

  /**
   * Starts the broker with the retained messages kept from before, and has every later one kept:
   * aedes's in-memory store stays the one it serves them from.
   */
  private async keepRetained(persistence: RetainedPersistence, kept: RetainedStore): Promise<void> {
    const store = persistence.storeRetained.bind(persistence);
    for (const message of kept.load()) {
      // Who announced a retained config is kept with it: a restart does not make it the trusted side's.
      // Kept from before the account was: found by accountFor when asked.
      if (message.account !== undefined && message.topic.endsWith(CONFIG_SUFFIX)) {
        const { account } = message;
        const session = account === '' ? null : (this.options.accountSession?.(account) ?? removedAccount(account));
        this.announcers.set(message.topic, session);
      }
      // Kept before the broker had a size limit: cleared rather than handed to every subscriber.
      if (message.payload.length > MAX_PACKET_BYTES) {
        this.options.log?.warn(`retained message on ${message.topic} dropped: over the broker's size limit`, {
          topic: message.topic,
          bytes: message.payload.length,
          limit: MAX_PACKET_BYTES,
        });
        kept.record(message.topic, Buffer.alloc(0), 0);
        continue;
      }
      await store({ cmd: 'publish', topic: message.topic, payload: message.payload, qos: message.qos, retain: true });
    }
    persistence.storeRetained = async (packet) => {
      await store(packet);
      const announcer = this.announcers.get(packet.topic);
      // '' for the trusted side, so that it is told from a message kept before accounts were.
      kept.record(packet.topic, packet.payload, packet.qos, announcer === null ? '' : announcer?.account);
    };
  }

  async stop(): Promise<void> {
    const { servers, broker } = this;
    this.servers = [];
    this.broker = null;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    // After the broker: a retained message that came in while it closed is kept too.
    this.options.retained?.close();
  }
}

/** A removed device account, as what it announced is judged: it may use no topic at all. */
function removedAccount(account: string): BrokerSession {
  return { namespace: null, hidden: null, account, mayPublish: () => false, maySubscribe: () => false };
}

async function listen(server: Server, port: number, host = '0.0.0.0'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}
