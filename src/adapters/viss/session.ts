import type { Clock } from '../../core/clock.ts';
import { clip, isVissError, type VissError, vissErrors } from './errors.ts';
import {
  compare,
  type GetRequest,
  parseRequest,
  responseText,
  type SetRequest,
  type SubscribeRequest,
  type Trigger,
  type VissRequest,
  type VissVersion,
} from './protocol.ts';
import { fromWire, normalisePath, type SignalTree, type SignalValue, type VssNode, type WireValue } from './tree.ts';

/** One value of a signal and when it was captured. */
export interface DataPoint {
  value: WireValue;
  ts: number;
}

/**
 * What a VISS server serves: a vehicle's signals. The hub's twin and the car simulator each
 * implement it, so one session handles both.
 */
export interface SignalSource {
  readonly tree: SignalTree;
  read(path: string): DataPoint | undefined;
  /** Carries out a set on an actuator (type and limits already checked); resolves to an error to refuse it. */
  write(path: string, value: SignalValue): Promise<VissError | null>;
  /** Calls `listener` with each leaf whose value changed; returns the function that stops it. */
  watch(listener: (path: string) => void): () => void;
  /**
   * Why the source may not be used right now (a guest pass outside its window), or null. Asked at
   * every request and before every subscription event: a connection outlives any one moment, so
   * what it may do is judged when it does it, as the HTTP API judges each call.
   */
  refusal?(): VissError | null;
}

export type ConnectionSource = SignalSource | VissError | null;

/** Checks a token from a request's `authorization` field: the source it opens, or why not. */
export type Authorizer = (token: string) => Promise<SignalSource | VissError>;

export interface VissSessionOptions {
  version: VissVersion;
  clock: Clock;
  send: (text: string) => void;
  /**
   * What the connection itself opens (the upgrade's token, or an open server's vehicle): the
   * source, the error to answer requests without their own token with, or null for "none yet".
   * A promise while the upgrade's token is being checked.
   */
  source: ConnectionSource | Promise<ConnectionSource>;
  /** Null for an open server (the simulator); otherwise requests without a source need a token. */
  authorize: Authorizer | null;
  maxSubscriptions?: number;
  /** Requests per second beyond which the session answers 429 instead of working. */
  maxRequestsPerSecond?: number;
}

export const DEFAULT_MAX_SUBSCRIPTIONS = 100;
const INLINE_UNAVAILABLE = 'viss-inline:Data-not-available';

interface Subscription {
  stop: () => void;
}

/**
 * One client's VISS conversation over one WebSocket: requests in, responses and subscription
 * events out. Subscriptions belong to the connection (VISS transport) and end with it.
 */
export class VissSession {
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly tokens = new Map<string, SignalSource | VissError>();
  private nextSubscription = 1;
  private window = { start: 0, count: 0 };
  private closed = false;

  constructor(private readonly options: VissSessionOptions) {}

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Handles one text message from the client; never throws. */
  async handle(text: string): Promise<void> {
    const parsed = parseRequest(text);
    if (!parsed.ok) {
      const body: Record<string, unknown> = {};
      if (parsed.action) body.action = parsed.action;
      if (parsed.requestId) body.requestId = parsed.requestId;
      this.reply(body, parsed.error);
      return;
    }
    const request = parsed.request;
    const echo = { action: request.action, requestId: request.requestId };
    if (this.overLimit()) {
      this.reply(echo, {
        number: 429,
        reason: 'too_many_requests',
        description: 'Rate-limiting due to too many requests',
      });
      return;
    }
    // A token check that fails (the store gone away) answers this request, not the connection's next ones.
    const source = await this.sourceFor(request).catch(() => vissErrors.unavailable('the token could not be checked'));
    if (isVissError(source)) {
      this.reply(echo, source);
      return;
    }
    // Ending a subscription is always allowed: it only ever takes away.
    const refusal = request.action === 'unsubscribe' ? null : source.refusal?.();
    if (refusal) {
      this.reply(echo, refusal);
      return;
    }
    try {
      switch (request.action) {
        case 'get':
          this.get(source, request);
          return;
        case 'set':
          await this.set(source, request);
          return;
        case 'subscribe':
          this.subscribe(source, request);
          return;
        case 'unsubscribe': {
          const subscription = this.subscriptions.get(request.subscriptionId);
          if (!subscription) {
            this.reply(echo, vissErrors.unknownSubscription());
            return;
          }
          subscription.stop();
          this.subscriptions.delete(request.subscriptionId);
          this.reply({ ...echo, subscriptionId: request.subscriptionId });
          return;
        }
      }
    } catch {
      this.reply(echo, vissErrors.unavailable('internal error'));
    }
  }

  /** Ends every subscription; called when the connection closes. */
  close(): void {
    this.closed = true;
    for (const subscription of this.subscriptions.values()) subscription.stop();
    this.subscriptions.clear();
  }

  private async sourceFor(request: VissRequest): Promise<SignalSource | VissError> {
    const { authorize } = this.options;
    if (request.authorization !== undefined && authorize) {
      let answer = this.tokens.get(request.authorization);
      if (!answer) {
        answer = await authorize(request.authorization);
        // A connection trying many tokens gets no cache to grow. Only a source, or a token nobody
        // knows, keeps its answer: any other refusal may not hold by the next request (the store
        // back, a guest pass's window open).
        const lasting = !isVissError(answer) || answer.number === 401;
        if (this.tokens.size < 16 && lasting) this.tokens.set(request.authorization, answer);
      }
      return answer;
    }
    return (await this.options.source) ?? vissErrors.missingToken();
  }

  private get(source: SignalSource, request: GetRequest): void {
    const echo = { action: 'get', requestId: request.requestId };
    if (request.metadata) {
      const metadata = metadataOf(source.tree, request);
      this.reply(metadata ? { ...echo, metadata } : echo, metadata ? undefined : vissErrors.unknownPath(request.path));
      return;
    }
    const leaves = source.tree.resolve(request.path, request.paths);
    if (isVissError(leaves)) {
      this.reply(echo, leaves);
      return;
    }
    if (leaves.length === 1 && !request.paths) {
      const dp = source.read(leaves[0]);
      if (!dp) {
        this.reply(echo, vissErrors.notAvailable(leaves[0]));
        return;
      }
      this.reply({ ...echo, data: { path: leaves[0], dp: wireDp(dp) } });
      return;
    }
    // Several signals: the ones without a value yet are reported in-line (VISSv3), not as an error.
    const now = this.options.clock.now();
    const data = leaves.map((path) => {
      const dp = source.read(path);
      return { path, dp: dp ? wireDp(dp) : { value: INLINE_UNAVAILABLE, ts: iso(now) } };
    });
    this.reply({ ...echo, data });
  }

  private async set(source: SignalSource, request: SetRequest): Promise<void> {
    const echo = { action: 'set', requestId: request.requestId };
    const leaves = source.tree.resolve(request.path);
    if (isVissError(leaves)) {
      this.reply(echo, leaves);
      return;
    }
    const node = source.tree.node(leaves[0]);
    if (leaves.length !== 1 || leaves[0] !== request.path.replace(/\//g, '.') || !node) {
      this.reply(echo, vissErrors.setOnBranch(request.path));
      return;
    }
    if (node.type !== 'actuator') {
      this.reply(echo, vissErrors.setOnSensor(request.path));
      return;
    }
    const value = fromWire(node, request.value);
    if (isVissError(value)) {
      this.reply(echo, value);
      return;
    }
    const refusal = await source.write(leaves[0], value);
    this.reply(echo, refusal ?? undefined);
  }

  private subscribe(source: SignalSource, request: SubscribeRequest): void {
    const echo = { action: 'subscribe', requestId: request.requestId };
    const max = this.options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS;
    if (this.subscriptions.size >= max) {
      this.reply(echo, vissErrors.tooManySubscriptions(max));
      return;
    }
    const leaves = source.tree.resolve(request.path, request.paths);
    if (isVissError(leaves)) {
      this.reply(echo, leaves);
      return;
    }
    const misused = misusedFilter(source.tree, request);
    if (misused) {
      this.reply(echo, misused);
      return;
    }
    const subscriptionId = String(this.nextSubscription++);
    const event = () => {
      if (this.closed) return;
      const refusal = source.refusal?.();
      if (refusal) {
        this.endSubscription(subscriptionId, refusal);
        return;
      }
      const points = leaves.flatMap((path) => {
        const dp = source.read(path);
        return dp ? [{ path, dp: wireDp(dp) }] : [];
      });
      if (points.length === 0) return;
      this.reply({ action: 'subscription', subscriptionId, data: points.length === 1 ? points[0] : points });
    };
    const stop = startTrigger(request.trigger, {
      clock: this.options.clock,
      source,
      // Value filters watch the first signal only (VISS core, subscription event triggering).
      signal: leaves[0],
      fire: event,
    });
    this.subscriptions.set(subscriptionId, { stop });
    this.reply({ ...echo, subscriptionId });
  }

  /**
   * Ends a subscription the client may no longer have (a guest pass's window closed), telling it
   * why in a subscription error message (VISS core: `action` subscription with an `error`).
   */
  private endSubscription(subscriptionId: string, why: VissError): void {
    const subscription = this.subscriptions.get(subscriptionId);
    if (!subscription) return;
    subscription.stop();
    this.subscriptions.delete(subscriptionId);
    this.reply({ action: 'subscription', subscriptionId }, why);
  }

  private overLimit(): boolean {
    const limit = this.options.maxRequestsPerSecond ?? 200;
    const now = this.options.clock.now();
    if (now - this.window.start >= 1000) this.window = { start: now, count: 0 };
    this.window.count++;
    return this.window.count > limit;
  }

  private reply(body: Record<string, unknown>, error?: VissError): void {
    if (this.closed) return;
    this.options.send(responseText(this.options.version, body, this.options.clock.now(), error));
  }
}

/**
 * Why a subscription's value filter (change, range) could never work as asked, or null: refused
 * up front (VISS: 400 "Missing or invalid filter") rather than granted and silent. The filter is
 * judged on one signal, the first the request names (VISS core, subscription event triggering),
 * and that first path "must not contain wildcards to address multiple signals": a branch
 * (`Vehicle.Cabin`) would be judged on whichever leaf comes first and send them all. A range
 * compares numbers, so a text signal (a VIN) is never in one; text can only change, so its only
 * change filter is `ne`.
 */
function misusedFilter(tree: SignalTree, request: SubscribeRequest): VissError | null {
  const { trigger } = request;
  if (trigger.kind === 'timebased') return null;
  const first = request.paths?.length ? request.paths[0] : undefined;
  const named = [request.path, first].filter((p) => p !== undefined).join('.');
  const leaves = tree.resolve(request.path, first === undefined ? undefined : [first]);
  if (isVissError(leaves)) return leaves;
  // A leaf is as deep as the path that named it; a branch's leaves are deeper.
  const depth = (path: string) => (normalisePath(path) ?? '').split('.').length;
  if (leaves.length !== 1 || depth(leaves[0]) !== depth(named)) {
    return vissErrors.badFilter(
      `a ${trigger.kind} filter is judged on one signal, and ${clip(named)} addresses ${leaves.length === 1 ? 'a branch' : `${leaves.length} signals`}; name one signal first`,
    );
  }
  const datatype = tree.node(leaves[0])?.datatype ?? 'string';
  if (datatype !== 'string' && !datatype.endsWith('[]')) return null;
  if (trigger.kind === 'range')
    return vissErrors.badFilter(`a range compares numbers, and ${leaves[0]} is a ${datatype}`);
  if (trigger.op !== 'ne')
    return vissErrors.badFilter(`${leaves[0]} is a ${datatype}: the only change filter it takes is logic-op ne`);
  return null;
}

/** Starts what decides when a subscription sends; returns the function that stops it. */
function startTrigger(
  trigger: Trigger,
  on: { clock: Clock; source: SignalSource; signal: string; fire: () => void },
): () => void {
  if (trigger.kind === 'timebased') return on.clock.setInterval(on.fire, trigger.periodMs);
  const numeric = (path: string) => numberOf(on.source.read(path)?.value);
  if (trigger.kind === 'range') {
    const inRange = () => {
      const value = numeric(on.signal);
      if (value === null) return false;
      const results = trigger.boundaries.map((b) => compare(value, b.op, b.boundary));
      return trigger.combination === 'OR' ? results.some(Boolean) : results.every(Boolean);
    };
    return on.source.watch((path) => {
      if (path === on.signal && inRange()) on.fire();
    });
  }
  // Change: compares the value with the last one sent. For gt/gte the reference follows the value
  // down (and for lt/lte up), so "rose by more than diff" is measured from the lowest point since.
  let reference = on.source.read(on.signal)?.value;
  return on.source.watch((path) => {
    if (path !== on.signal) return;
    const current = on.source.read(on.signal)?.value;
    if (current === undefined) return;
    const now = numberOf(current);
    const before = numberOf(reference);
    if (now === null || before === null) {
      const changed = JSON.stringify(current) !== JSON.stringify(reference);
      if (changed && trigger.op === 'ne') {
        reference = current;
        on.fire();
      }
      return;
    }
    if (compare(now - before, trigger.op, trigger.diff)) {
      reference = current;
      on.fire();
    } else if (
      ((trigger.op === 'gt' || trigger.op === 'gte') && now < before) ||
      ((trigger.op === 'lt' || trigger.op === 'lte') && now > before)
    ) {
      reference = current;
    }
  });
}

/** Numbers and booleans (true = 1) compare as numbers; other strings do not. */
function numberOf(value: WireValue | undefined): number | null {
  if (typeof value !== 'string') return null;
  if (value === 'true') return 1;
  if (value === 'false') return 0;
  const n = value.trim() === '' ? NaN : Number(value);
  return Number.isFinite(n) ? n : null;
}

function wireDp(dp: DataPoint): { value: WireValue; ts: string } {
  return { value: dp.value, ts: iso(dp.ts) };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** VSS metadata of the addressed subtree, nested by name, down `generations` levels (all when null). */
function metadataOf(tree: SignalTree, request: GetRequest): Record<string, unknown> | undefined {
  if (request.metadata?.kind === 'server_capabilities') {
    return {
      filter: ['paths', 'timebased', 'change', 'range', 'static-metadata', 'metadata', 'dynamic-metadata'],
      access_ctrl: [],
      transport_protocol: ['wss', 'ws'],
    };
  }
  const path = request.path.replace(/\//g, '.');
  const node = tree.node(path);
  if (!node) return undefined;
  const generations = request.metadata?.kind === 'static' ? request.metadata.generations : null;
  const describe = (at: string, node: VssNode, depth: number): Record<string, unknown> => {
    const entry: Record<string, unknown> = { ...node };
    const children = tree.childrenOf(at);
    if (children.length && (generations === null || depth < generations)) {
      entry.children = Object.fromEntries(
        children.map((child) => [
          child.slice(child.lastIndexOf('.') + 1),
          describe(child, tree.node(child)!, depth + 1),
        ]),
      );
    }
    return entry;
  };
  return { [path.slice(path.lastIndexOf('.') + 1)]: describe(path, node, 0) };
}
