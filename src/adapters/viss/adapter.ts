import { CommandExpired } from '../../core/errors.ts';
import type { Command, Report } from '../../core/events.ts';
import type { Thing } from '../../model/thing.ts';
import type { Adapter, AdapterContext } from '../adapter.ts';
import { pointsOf, type ReceivedPoint, subscriptionIdOf, VissClient } from './client.ts';
import type { VissError } from './errors.ts';
import { type SignalValue, toWire } from './tree.ts';

/**
 * How a kind of thing maps onto VSS: which paths to follow, how their values become reports, and
 * which sets carry out a command. The vehicles subsystem provides it; the adapter knows only VISS.
 */
export interface VissMapping {
  paths(thing: Thing): string[];
  reports(thing: Thing, points: ReceivedPoint[], now: number): Report[];
  /** The sets for a command; throws a HubError for a command the mapping cannot express. */
  writes(command: Command, thing: Thing): Array<{ path: string; value: SignalValue }>;
}

export interface VissEndpoint {
  householdId: string;
  thing: string;
  /** ws:// or wss:// address of the vehicle's VISS server. */
  url: string;
  token?: string;
}

interface Link {
  endpoint: VissEndpoint;
  client: VissClient;
  /** Commands waiting for the car to come back, each until its own expiry. */
  waiting: Set<{ ready: () => void; cancel: () => void }>;
  /** The capture time of the newest value taken from each path on this connection. */
  newest: Map<string, number>;
  /** The signals this connection follows (read and subscribed at connect): the only ones taken. */
  followed: Set<string>;
  /** This connection's subscriptions: the paths of each id the car gave (a car may reuse one). */
  subscriptions: Map<string, Set<string>>;
  /** Per path: when it was last subscribed, and the renewal after the car ended it, if one waits. */
  renewals: Map<string, Renewal>;
  /** Counts connections (and drops): an answer from an earlier one names nothing that still exists. */
  generation: number;
}

interface Renewal {
  /** Renewals in a row: the wait doubles with each, so a car that keeps ending one is not hammered. */
  attempt: number;
  subscribedAt: number;
  cancel: (() => void) | null;
}

const DEFAULT_BACKOFF = { initialMs: 1_000, maxMs: 60_000 };
const CHANGES = { variant: 'change', type: 'change', parameter: { 'logic-op': 'ne', diff: '0' } } as const;

/**
 * A capture time ahead of the hub's clock by more than this, or from before the car was attached
 * to Triad, is a car's clock that is not set (a gateway that booted without time reads 1970) or
 * runs wild, not a measurement: the value counts as captured when it arrived, so a trip neither
 * starts decades ago nor holds back the values after it. A car that was out of reach for days
 * still dates what it saw meanwhile (where it stopped) by its own clock.
 */
const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/**
 * Mirrors vehicles that speak VISS into their twins and carries commands to them as VISS `set`s.
 * A command for a car that is out of reach waits (in memory, until its expiry) and goes out when the
 * car reconnects; the command service expires it if the car never does.
 */
export class VissAdapter implements Adapter {
  readonly name = 'viss';
  private ctx: AdapterContext | null = null;
  private readonly links = new Map<string, Link>();

  constructor(
    private readonly options: {
      mapping: VissMapping;
      backoff?: { initialMs: number; maxMs: number };
      /**
       * Asked again, once the car is back, of a command that waited for it: why it may no longer
       * go out (the rules it passed when issued held for the car as it was then), or null.
       */
      recheck?: (command: Command, thing: Thing) => Error | null;
    },
  ) {}

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.links.keys()].map((key) => this.dropLink(key)));
    this.ctx = null;
  }

  /** Starts following a vehicle's VISS endpoint (again, if it was already followed). */
  async connect(endpoint: VissEndpoint): Promise<void> {
    const ctx = this.require();
    const key = keyOf(endpoint.householdId, endpoint.thing);
    await this.dropLink(key);
    const link: Link = {
      endpoint,
      client: null as unknown as VissClient,
      waiting: new Set(),
      newest: new Map(),
      followed: new Set(),
      subscriptions: new Map(),
      renewals: new Map(),
      generation: 0,
    };
    link.client = new VissClient({
      url: endpoint.url,
      token: endpoint.token,
      clock: ctx.clock,
      log: ctx.log.child(endpoint.thing),
      backoff: this.options.backoff,
      // Runs on a socket event: a failure is logged, never left as an unhandled rejection.
      onConnect: () =>
        void this.follow(link).catch((error: unknown) =>
          ctx.log.warn('could not follow vehicle', { thing: endpoint.thing, error: String(error) }),
        ),
      onDisconnect: () => {
        // Subscriptions belong to the connection: the next one subscribes to everything afresh.
        this.forgetSubscriptions(link);
        ctx.setAvailability(endpoint.householdId, endpoint.thing, false);
      },
      onPoints: (points) => this.mirror(link, points),
      onSubscriptionEnded: (id, error) => this.subscriptionEnded(link, id, error),
    });
    this.links.set(key, link);
    link.client.start();
  }

  async disconnect(householdId: string, thing: string): Promise<void> {
    await this.dropLink(keyOf(householdId, thing));
  }

  isConnected(householdId: string, thing: string): boolean {
    return this.links.get(keyOf(householdId, thing))?.client.connected ?? false;
  }

  async execute(command: Command, thing: Thing): Promise<void> {
    const ctx = this.require();
    const link = this.links.get(keyOf(thing.householdId, thing.id));
    if (!link) throw new Error(`${thing.name} has no VISS endpoint attached`);
    const writes = this.options.mapping.writes(command, thing);
    if (!link.client.connected) {
      ctx.log.info('vehicle out of reach; the command waits for it', { thing: thing.id, command: command.id });
      await this.untilConnected(link, command.expiresAt);
      const refusal = this.options.recheck?.(command, thing);
      if (refusal) throw refusal;
    }
    for (const write of writes) {
      await link.client.request({ action: 'set', path: write.path, value: toWire(write.value) });
    }
    // The car's own word on what was written: its subscriptions tell of changes only, so `lock` on
    // a locked car would otherwise hear nothing back and wait out its expiry. A read that fails
    // leaves the command to the subscriptions and its expiry, as before.
    const reads = await Promise.allSettled(
      writes.map((write) => link.client.request({ action: 'get', path: write.path })),
    );
    const points: ReceivedPoint[] = [];
    for (const read of reads) {
      if (read.status === 'fulfilled' && read.value.data !== undefined) points.push(...pointsOf(read.value.data));
    }
    if (points.length) this.mirror(link, points);
  }

  /** Resolves when the car is connected, or rejects once the command's time is up. */
  private untilConnected(link: Link, expiresAt: number): Promise<void> {
    const clock = this.require().clock;
    return new Promise((resolve, reject) => {
      const entry = {
        ready: () => {
          cancelExpiry();
          link.waiting.delete(entry);
          resolve();
        },
        cancel: () => {
          cancelExpiry();
          link.waiting.delete(entry);
          reject(new CommandExpired('the vehicle stayed out of reach until the command expired'));
        },
      };
      const cancelExpiry = clock.setTimeout(entry.cancel, Math.max(0, expiresAt - clock.now()));
      link.waiting.add(entry);
    });
  }

  /** After (re)connecting: read every signal once, subscribe to its changes, then release waiting commands. */
  private async follow(link: Link): Promise<void> {
    const ctx = this.require();
    const { householdId, thing: id } = link.endpoint;
    const thing = ctx.getThing(householdId, id);
    if (!thing) return;
    ctx.setAvailability(householdId, id, true);
    // A car that restarted may have a clock behind the one it had: its times count afresh.
    link.newest.clear();
    const paths = this.options.mapping.paths(thing);
    link.followed = new Set(paths);
    // Signals the car does not offer answer 404; the others still mirror.
    const reads = await Promise.allSettled(paths.map((path) => link.client.request({ action: 'get', path })));
    const points: ReceivedPoint[] = [];
    for (const read of reads) {
      if (read.status === 'fulfilled' && read.value.data !== undefined) points.push(...pointsOf(read.value.data));
    }
    this.mirror(link, points);
    // Commands that waited go out once the twin shows the car as it is now, not as it was last
    // heard of: each is checked again against that (a car parked then may be driving now).
    for (const waiting of [...link.waiting]) waiting.ready();
    this.forgetSubscriptions(link);
    const generation = link.generation;
    const subscribed = await Promise.allSettled(paths.map((path) => this.subscribe(link, path)));
    const refused = paths.filter((_, i) => subscribed[i].status === 'rejected');
    ctx.log.debug('following vehicle', { thing: id, signals: points.length, refusedSubscriptions: refused.length });
    // A refusal can be passing (a gateway still starting its signal sources): left alone, those
    // signals would go stale without a word, so they are renewed like a subscription the car
    // ended. Not when the connection dropped meanwhile: the next one subscribes afresh.
    if (refused.length === 0 || link.generation !== generation || !link.client.connected) return;
    const first = subscribed.find((s) => s.status === 'rejected')?.reason;
    ctx.log.warn('the vehicle refused to subscribe to some signals; subscribing again later', {
      thing: id,
      paths: refused.join(', ').slice(0, 500),
      error: String(first).slice(0, 200),
    });
    const { initialMs, maxMs } = this.options.backoff ?? DEFAULT_BACKOFF;
    for (const path of refused) {
      const renewal: Renewal = { attempt: 0, subscribedAt: ctx.clock.now(), cancel: null };
      link.renewals.set(path, renewal);
      this.renewLater(link, path, renewal, initialMs, maxMs);
    }
  }

  /** Subscribes to a path's changes, and remembers which subscription id the car gave it. */
  private async subscribe(link: Link, path: string): Promise<void> {
    const generation = link.generation;
    const answer = await link.client.request({ action: 'subscribe', path, filter: CHANGES });
    const id = subscriptionIdOf(answer.subscriptionId);
    // An answer to a connection that has since closed names a subscription that no longer exists.
    if (id === null || link.generation !== generation) return;
    const paths = link.subscriptions.get(id) ?? new Set<string>();
    paths.add(path);
    link.subscriptions.set(id, paths);
    const renewal = link.renewals.get(path);
    if (renewal) renewal.subscribedAt = this.require().clock.now();
    else link.renewals.set(path, { attempt: 0, subscribedAt: this.require().clock.now(), cancel: null });
  }

  /**
   * The car ended a subscription (an error event, or an unsubscribe it was not asked for): its
   * signals would go stale without a word, so each is subscribed again after a back-off. Logged
   * once per run of endings: a car that ends it again at once waits longer each time, unlogged,
   * until one lasts longer than the longest wait.
   */
  private subscriptionEnded(link: Link, id: string, error: VissError | null): void {
    const ctx = this.ctx;
    const paths = link.subscriptions.get(id);
    // An id this connection never had (a car making them up) renews nothing.
    if (!ctx || !paths || this.links.get(keyOf(link.endpoint.householdId, link.endpoint.thing)) !== link) return;
    link.subscriptions.delete(id);
    const { initialMs, maxMs } = this.options.backoff ?? DEFAULT_BACKOFF;
    for (const path of paths) {
      const renewal = link.renewals.get(path) ?? { attempt: 0, subscribedAt: ctx.clock.now(), cancel: null };
      link.renewals.set(path, renewal);
      if (renewal.cancel) continue;
      if (ctx.clock.now() - renewal.subscribedAt > maxMs) renewal.attempt = 0;
      if (renewal.attempt === 0) {
        ctx.log.warn('the vehicle ended a subscription; subscribing again', {
          thing: link.endpoint.thing,
          path,
          error: error ? `${error.number} ${error.reason}: ${error.description}`.slice(0, 200) : null,
        });
      }
      this.renewLater(link, path, renewal, initialMs, maxMs);
    }
  }

  private renewLater(link: Link, path: string, renewal: Renewal, initialMs: number, maxMs: number): void {
    const ctx = this.require();
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(renewal.attempt, 16));
    renewal.attempt++;
    const generation = link.generation;
    const current = () => link.generation === generation && link.renewals.get(path) === renewal;
    renewal.cancel = ctx.clock.setTimeout(() => {
      renewal.cancel = null;
      if (!current() || !link.client.connected) return;
      // What changed while the car sent nothing is read first: the subscription tells of changes only.
      void link.client
        .request({ action: 'get', path })
        .then((read) => read.data !== undefined && this.mirror(link, pointsOf(read.data)))
        .catch(() => undefined)
        .then(() => this.subscribe(link, path))
        .catch((error: unknown) => {
          ctx.log.debug('could not subscribe again', { thing: link.endpoint.thing, path, error: String(error) });
          if (current() && link.client.connected && !renewal.cancel)
            this.renewLater(link, path, renewal, initialMs, maxMs);
        });
    }, delay);
  }

  /** Forgets a connection's subscriptions and cancels the renewals waiting (a new connection subscribes afresh). */
  private forgetSubscriptions(link: Link): void {
    link.generation++;
    link.subscriptions.clear();
    for (const renewal of link.renewals.values()) renewal.cancel?.();
    link.renewals.clear();
  }

  private mirror(link: Link, received: ReceivedPoint[]): void {
    if (received.length === 0) return;
    const ctx = this.require();
    const thing = ctx.getThing(link.endpoint.householdId, link.endpoint.thing);
    if (!thing) return;
    const now = ctx.clock.now();
    const attached = Date.parse(thing.createdAt);
    const points: ReceivedPoint[] = [];
    for (const point of received) {
      // Only the signals the car is followed on are remembered: a car sending made-up paths grows nothing.
      if (!link.followed.has(point.path)) continue;
      // A value captured before one already taken from the same signal arrived late (a car that
      // replays a buffer, events that overtook each other): it is history, not the car's state. A
      // stale "standing still" after "moving" would otherwise let an unlock through at speed.
      const newest = link.newest.get(point.path);
      if (newest !== undefined && point.ts < newest) continue;
      if (!(point.ts >= attached && point.ts <= now + MAX_FUTURE_SKEW_MS)) {
        // Not a time to date or order by: one wild stamp must not hold back the values after it.
        points.push({ ...point, ts: now });
        continue;
      }
      link.newest.set(point.path, point.ts);
      points.push(point);
    }
    if (points.length) ctx.ingest(this.options.mapping.reports(thing, points, now));
  }

  private async dropLink(key: string): Promise<void> {
    const link = this.links.get(key);
    if (!link) return;
    this.links.delete(key);
    for (const waiting of [...link.waiting]) waiting.cancel();
    this.forgetSubscriptions(link);
    await link.client.stop();
  }

  private require(): AdapterContext {
    if (!this.ctx) throw new Error('the VISS adapter has not started');
    return this.ctx;
  }
}

function keyOf(householdId: string, thing: string): string {
  return `${householdId}\u0000${thing}`;
}
