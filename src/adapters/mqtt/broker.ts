import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBrokerOptions {
  port: number;
  host?: string;
  /**
   * Decides whether a client may connect. Without it any client may (the embedded default for
   * a single-household hub on a private network); security adds device credentials here.
   */
  authenticate?: (clientId: string, username: string | undefined, password: Buffer | undefined) => boolean;
  /** Decides whether a client may publish on a topic. */
  authorizePublish?: (clientId: string, topic: string) => boolean;
  /** Decides whether a client may subscribe to a topic filter. */
  authorizeSubscribe?: (clientId: string, filter: string) => boolean;
}

/** An MQTT broker inside the hub process, so a fresh install needs no Mosquitto. */
export class EmbeddedBroker {
  private server: Server | null = null;
  private broker: Aedes | null = null;
  private boundPort = 0;

  constructor(private readonly options: EmbeddedBrokerOptions) {}

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `mqtt://${this.options.host ?? '127.0.0.1'}:${this.boundPort}`;
  }

  async start(): Promise<void> {
    const broker = await Aedes.createBroker();
    const { authenticate, authorizePublish, authorizeSubscribe } = this.options;
    if (authenticate) {
      broker.authenticate = (client, username, password, done) => {
        const ok = authenticate(client.id, username, password);
        if (ok) done(null, true);
        else {
          const error = Object.assign(new Error('bad user name or password'), { returnCode: 4 });
          done(error as never, false);
        }
      };
    }
    if (authorizePublish) {
      broker.authorizePublish = (client, packet, done) => {
        if (!client || authorizePublish(client.id, packet.topic)) done(null);
        else done(new Error(`publish to ${packet.topic} not allowed`));
      };
    }
    if (authorizeSubscribe) {
      broker.authorizeSubscribe = (client, sub, done) => {
        if (authorizeSubscribe(client.id, sub.topic)) done(null, sub);
        else done(new Error(`subscribe to ${sub.topic} not allowed`), null);
      };
    }
    const server = createServer((socket) => {
      socket.setNoDelay(true);
      broker.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host ?? '0.0.0.0', () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const address = server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : this.options.port;
    this.server = server;
    this.broker = broker;
  }

  async stop(): Promise<void> {
    const { server, broker } = this;
    this.server = null;
    this.broker = null;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
