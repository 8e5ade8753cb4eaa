import type { IncomingMessage } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { VISS_SUBPROTOCOLS, type VissVersion } from './protocol.ts';
import type { SignalSource } from './session.ts';
import { type Authorizer, type ConnectionSource, VissSession } from './session.ts';

/** A client this far behind is cut off rather than allowed to grow the server's memory. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
export const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_QUEUED_REQUESTS = 1000;

/**
 * The VISS version a connection speaks, from its negotiated subprotocol. A client that offered
 * none gets VISSv3; one that negotiated something else is not a VISS client (null).
 */
export function versionOf(protocol: string): VissVersion | null {
  if (protocol === '') return 'VISSv3';
  return (VISS_SUBPROTOCOLS as readonly string[]).includes(protocol) ? (protocol as VissVersion) : null;
}

/** Picks VISSv3 over VISSv2 when a client offers both; nothing else is accepted. */
export function chooseSubprotocol(offered: Set<string>): string | false {
  for (const version of VISS_SUBPROTOCOLS) if (offered.has(version)) return version;
  return false;
}

/**
 * Runs a VISS session on an open WebSocket: messages in, answers out, subscriptions ended on close.
 * Shared by the hub's `/viss/{id}` route and the simulator's own server.
 */
export function serveVissSocket(
  socket: WebSocket,
  options: {
    clock: Clock;
    source: ConnectionSource | Promise<ConnectionSource>;
    authorize: Authorizer | null;
    log?: Logger;
  },
): VissSession | null {
  const version = versionOf(socket.protocol);
  if (!version) {
    socket.close(1002, 'subprotocol must be VISSv3 or VISSv2');
    return null;
  }
  const session = new VissSession({
    version,
    clock: options.clock,
    source: options.source,
    authorize: options.authorize,
    send: (text) => {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        socket.close(1013, 'too slow: messages were piling up');
        return;
      }
      socket.send(text);
    },
  });
  // Requests are answered in the order they came, so a set is seen by a later get.
  let queue: Promise<void> = Promise.resolve();
  let queued = 0;
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    // The rate limit answers only once a request's turn comes; this bounds what waits for it.
    if (queued >= MAX_QUEUED_REQUESTS) {
      socket.close(1008, 'too many requests waiting for an answer');
      return;
    }
    queued++;
    const text = isBinary ? '' : data.toString('utf8');
    queue = queue.then(() => session.handle(text)).finally(() => queued--);
  });
  const close = () => session.close();
  socket.on('close', close);
  socket.on('error', (error) => {
    options.log?.debug('VISS connection error', { error: String(error) });
    close();
  });
  return session;
}

export interface VissWebSocketServerOptions {
  port: number;
  host?: string;
  /** The path clients connect to; any path when absent. */
  path?: string;
  clock: Clock;
  source: SignalSource;
  log?: Logger;
}

/**
 * A stand-alone VISS server on its own port (the car simulator, or anything that is a vehicle
 * rather than the hub). Open, as an in-vehicle server on a private network would be.
 */
export class VissWebSocketServer {
  private server: WebSocketServer | null = null;

  constructor(private readonly options: VissWebSocketServerOptions) {}

  async start(): Promise<void> {
    const { port, host = '127.0.0.1', path } = this.options;
    const server = new WebSocketServer({
      port,
      host,
      maxPayload: MAX_MESSAGE_BYTES,
      handleProtocols: chooseSubprotocol,
      verifyClient: path
        ? (info: { req: IncomingMessage }) => (info.req.url ?? '').split('?', 1)[0] === path
        : undefined,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.on('connection', (socket) =>
      serveVissSocket(socket, {
        clock: this.options.clock,
        source: this.options.source,
        authorize: null,
        log: this.options.log,
      }),
    );
    this.server = server;
  }

  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** The address a client connects to. */
  get url(): string {
    return `ws://${this.options.host ?? '127.0.0.1'}:${this.port}${this.options.path ?? '/'}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    for (const client of server.clients) client.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
