import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthorizeForwardHandler, type Client } from 'aedes';
import { urlHost } from '../../core/listen-address.ts';
import type { RetainedStore } from './retained-store.ts';

type ForwardedPacket = Parameters<AuthorizeForwardHandler>[1];

/** The broker's own topics: who is connected, with which client id, subscribed to what. */
const SYS_PREFIX = '$SYS/';

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
   * others'; nor do the broker's `$SYS` ones, which name every household's clients. Null for the
   * clients that see every topic (the hub's own, which serves every household).
   */
  hidden: string | null;
  /** Whether it may publish on a topic, as the client names it (before the namespace). */
  mayPublish(topic: string): boolean;
  /** Whether it may subscribe to a filter, as the client names it. */
  maySubscribe(filter: string): boolean;
  /** Called with every refused publish or subscription, for the audit trail. */
  refused?(what: 'publish' | 'subscribe', topic: string): void;
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
  /** For each connected client whose session can be revoked, what forgets its registration. */
  private readonly revocable = new WeakMap<Client, () => void>();
  /**
   * For each namespaced client catching up on its queue, the queued messages (queuedKey) already
   * handed over with the namespace taken off their topics (see keepNamespacesInQueues).
   */
  private readonly unqueued = new WeakMap<Client, Set<string>>();

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
      broker.handle(socket);
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
      done(null);
    };
    broker.authorizeSubscribe = (client, sub, done) => {
      const session = this.sessions.get(client);
      // A session kept by the broker (`clean: false`) comes back with the subscriptions it stored,
      // already under the namespace: they are checked, and kept, as the client first named them.
      const namespace = session?.namespace;
      const named = namespace && sub.topic.startsWith(namespace) ? sub.topic.slice(namespace.length) : sub.topic;
      if (!session?.maySubscribe(named)) {
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
      if (!session) return null;
      if (session.namespace) {
        // A queued message comes here already stripped (keepNamespacesInQueues), once.
        const unqueued = this.unqueued.get(client);
        if (unqueued?.delete(queuedKey(packet))) return packet;
        return stripped(packet, session.namespace);
      }
      const hidden = session.hidden;
      if (hidden === null) return packet;
      // Runs for every message to every subscriber (retained ones on subscribe too): prefix tests only.
      const topic = packet.topic;
      return topic.startsWith(hidden) || topic.startsWith(SYS_PREFIX) ? null : packet;
    };
    this.keepNamespacesInQueues((broker as unknown as { persistence: QueuePersistence }).persistence);
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
      await store({ cmd: 'publish', topic: message.topic, payload: message.payload, qos: message.qos, retain: true });
    }
    persistence.storeRetained = async (packet) => {
      await store(packet);
      kept.record(packet.topic, packet.payload, packet.qos);
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
