import type { ApiClient } from '../api/client.ts';
import type { Command, CommandStatus, Thing, Value } from '../api/types.ts';

export type Connection = 'connecting' | 'live' | 'reconnecting';

/** What the dashboard knows of the household right now; replaced whole on every change. */
export interface LiveState {
  things: ReadonlyMap<string, Thing>;
  commands: ReadonlyMap<string, Command>;
  connection: Connection;
  /** False until the first snapshot arrives, so views can tell "loading" from "empty". */
  loaded: boolean;
}

const FINAL: ReadonlySet<CommandStatus> = new Set(['confirmed', 'failed', 'expired']);
export const isFinal = (status: CommandStatus) => FINAL.has(status);

type StreamMessage =
  | { type: 'thing'; thing: string; snapshot: Thing }
  | { type: 'snapshot.end' }
  | { type: 'state'; thing: string; property: string; value: Value; ts: string }
  | { type: 'command'; thing: string; command: Command }
  | { type: 'availability'; thing: string; online: boolean }
  | { type: 'thing.added' | 'thing.updated' | 'thing.removed'; thing: string }
  | { type: 'subscribed' | 'event' | 'error' | 'unsubscribed' };

/** Longest pause between reconnection attempts: a hub back after a restart is seen within this. */
const MAX_BACKOFF_MS = 10_000;
/** A command whose stream message was missed (a dropped socket) is asked after this long. */
const COMMAND_POLL_MS = 2_000;

/**
 * The household over the hub's WebSocket stream. Each (re)connection asks for a snapshot and
 * swaps it in whole when it ends, so state missed while disconnected is repaired and things that
 * vanished meanwhile disappear.
 */
export class LiveHub {
  private state: LiveState = { things: new Map(), commands: new Map(), connection: 'connecting', loaded: false };
  private readonly listeners = new Set<() => void>();
  private socket: WebSocket | null = null;
  private incoming: Map<string, Thing> | null = null;
  private attempts = 0;
  /** Availability messages heard per thing, so a fetched thing cannot undo a newer one (see newerOf). */
  private readonly availabilityNews = new Map<string, number>();
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly pollTimers = new Set<ReturnType<typeof setTimeout>>();
  private stopped = false;

  constructor(
    private readonly client: ApiClient,
    private readonly onUnauthorized: (message: string) => void,
  ) {}

  get current(): LiveState {
    return this.state;
  }

  /** Adds a listener; returns the function that removes it. */
  on(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    this.stopped = false;
    this.checkThenConnect();
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    for (const timer of this.pollTimers) clearTimeout(timer);
    this.pollTimers.clear();
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'signed out');
  }

  /** Invokes an action; the command is then followed on the stream (and by asking, if the stream drops). */
  async act(thing: string, action: string, input: Record<string, unknown> = {}): Promise<string> {
    const { commandId, status } = await this.client.send<{ commandId: string; status: CommandStatus }>(
      'POST',
      `/api/things/${encodeURIComponent(thing)}/actions/${encodeURIComponent(action)}`,
      input,
    );
    // The stream may already have told us about this command before the POST answered.
    if (!this.state.commands.has(commandId)) {
      this.putCommand({ id: commandId, thing, action, status, error: null });
    }
    this.pollCommand(commandId);
    return commandId;
  }

  private pollCommand(id: string): void {
    const timer = setTimeout(() => {
      this.pollTimers.delete(timer);
      const known = this.state.commands.get(id);
      if (this.stopped || !known || isFinal(known.status)) return;
      this.client
        .get<Command>(`/api/commands/${encodeURIComponent(id)}`)
        .then((command) => {
          this.putCommand(command);
          if (!isFinal(command.status)) this.pollCommand(id);
        })
        .catch(() => this.pollCommand(id));
    }, COMMAND_POLL_MS);
    this.pollTimers.add(timer);
  }

  private connect(): void {
    if (this.stopped) return;
    // A token rides in the query (browsers cannot set a WebSocket's headers); a session's cookie goes along by itself.
    const socket = new WebSocket(this.client.streamUrl());
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.incoming = new Map();
      socket.send(JSON.stringify({ type: 'subscribe', things: ['*'], snapshot: true }));
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      try {
        this.receive(JSON.parse(event.data) as StreamMessage);
      } catch {
        // A message we cannot read is skipped; the next snapshot repairs anything it carried.
      }
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      this.update({ connection: 'reconnecting' });
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempts);
    this.attempts += 1;
    this.reconnectTimer = setTimeout(() => this.checkThenConnect(), delay);
  }

  /**
   * Asks the API about the token or session before opening the socket: a refused WebSocket looks
   * like any other drop (and logs an error in the browser), while the API says plainly what is wrong.
   */
  private checkThenConnect(): void {
    this.client
      .check()
      .then((error) => {
        if (this.stopped) return;
        if (error?.status === 401)
          this.onUnauthorized(
            this.client.credentials.kind === 'session'
              ? 'Your session has ended (it expired, or you signed out elsewhere). Sign in again.'
              : 'Your sign-in has expired or the token was revoked. Sign in again.',
          );
        else this.connect();
      })
      .catch(() => {
        if (!this.stopped) this.scheduleReconnect();
      });
  }

  private receive(message: StreamMessage): void {
    switch (message.type) {
      case 'thing':
        if (this.incoming) this.incoming.set(message.thing, message.snapshot);
        else this.putThing(message.snapshot);
        return;
      case 'snapshot.end':
        this.attempts = 0;
        this.update({ things: this.incoming ?? this.state.things, connection: 'live', loaded: true });
        this.incoming = null;
        return;
      case 'state':
        this.applyState(message.thing, message.property, message.value, message.ts);
        return;
      case 'command':
        this.putCommand(message.command);
        return;
      case 'availability': {
        this.availabilityNews.set(message.thing, (this.availabilityNews.get(message.thing) ?? 0) + 1);
        const thing = this.state.things.get(message.thing);
        if (thing) this.putThing({ ...thing, online: message.online });
        return;
      }
      case 'thing.added':
      case 'thing.updated': {
        const id = message.thing;
        const news = this.availabilityNews.get(id) ?? 0;
        this.client
          .get<Thing>(`/api/things/${encodeURIComponent(id)}`)
          .then((thing) => this.putThing(this.newerOf(thing, news)))
          .catch(() => undefined);
        return;
      }
      case 'thing.removed': {
        const things = new Map(this.state.things);
        things.delete(message.thing);
        this.update({ things });
        return;
      }
      default:
        return;
    }
  }

  private applyState(id: string, property: string, value: Value, ts: string): void {
    // During a snapshot the state change lands on the incoming copy, which wins at its end.
    const source = this.incoming?.get(id) ?? this.state.things.get(id);
    if (!source) return;
    const info = source.properties[property];
    const thing: Thing = {
      ...source,
      state: { ...source.state, [property]: value },
      properties: info ? { ...source.properties, [property]: { ...info, value, ts } } : source.properties,
    };
    if (this.incoming?.has(id)) this.incoming.set(id, thing);
    else this.putThing(thing);
  }

  /**
   * A thing fetched after a `thing.updated`, with what the stream told of it while the request was
   * under way: the answer and the stream's messages travel apart, and the answer may be the older
   * (a car re-pointed to another address is announced, then goes offline: an answer made before
   * the second would bring it back online). `news` is how many availability messages had come for
   * it when the request was made.
   */
  private newerOf(fetched: Thing, news: number): Thing {
    const current = this.state.things.get(fetched.id);
    if (!current) return fetched;
    const online = (this.availabilityNews.get(fetched.id) ?? 0) !== news ? current.online : fetched.online;
    const state = { ...fetched.state };
    const properties = { ...fetched.properties };
    for (const [name, info] of Object.entries(current.properties)) {
      const got = properties[name];
      if (got && info.ts && (!got.ts || Date.parse(info.ts) > Date.parse(got.ts))) {
        properties[name] = { ...got, value: info.value, ts: info.ts };
        state[name] = current.state[name];
      }
    }
    return { ...fetched, online, state, properties };
  }

  private putThing(thing: Thing): void {
    const things = new Map(this.state.things);
    things.set(thing.id, thing);
    this.update({ things });
  }

  private putCommand(command: Command): void {
    const known = this.state.commands.get(command.id);
    // Messages can arrive out of order (stream vs. poll); a final status is never overwritten.
    if (known && isFinal(known.status) && !isFinal(command.status)) return;
    const commands = new Map(this.state.commands);
    commands.set(command.id, {
      id: command.id,
      thing: command.thing,
      action: command.action,
      status: command.status,
      error: command.error ?? null,
    });
    this.update({ commands });
  }

  private update(change: Partial<LiveState>): void {
    this.state = { ...this.state, ...change };
    for (const listener of this.listeners) listener();
  }
}
