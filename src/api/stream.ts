import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/tokens.ts';
import { HubError } from '../core/errors.ts';
import type { Command, HubEvent } from '../core/events.ts';
import { type ApiContext, presentedToken, principalOf } from './server.ts';
import { commandsShownTo } from './things.ts';
import { commandView, iso, thingView } from './views.ts';

/** A client that falls this far behind is cut off rather than allowed to grow the hub's memory. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const MAX_SUBSCRIBED_THINGS = 1000;
/**
 * Streams open at once with one token (or session): a dashboard tab holds one, a script a few.
 * Each stream hears every event of its household, so without a bound one token's holder (a
 * guest too) could make every state change cost the hub thousands of deliveries.
 */
export const MAX_STREAMS_PER_TOKEN = 32;
const PING_INTERVAL_MS = 30_000;
/** Real milliseconds a client has to answer a ping before the next interval finds it gone. */
const PONG_TIMEOUT_MS = 10_000;
/**
 * A snapshot waits for the client to take what it was sent once this much is waiting: a large
 * household's snapshot is far more than MAX_BUFFERED_BYTES, and sent all at once it would cut
 * off every client, fast or not.
 */
const SNAPSHOT_PAUSE_BYTES = 512 * 1024;

interface ClientMessage {
  type?: unknown;
  things?: unknown;
  snapshot?: unknown;
}

/** What a client message may hold: anything else (`types`, `events`) is a filter the stream does not have. */
const MESSAGE_FIELDS = new Set(['type', 'things', 'snapshot']);

/**
 * `/api/stream`: after `{"type":"subscribe","things":["*"]}` the client gets every state change
 * of its household as `{"type":"state","thing","property","value","ts"}`, plus command,
 * availability and thing messages. `"snapshot": true` first sends current values, so a client
 * that reconnects can resynchronise without a second request.
 */
export function registerStream(app: FastifyInstance, ctx: ApiContext): void {
  /** Open streams by token id. */
  const open = new Map<string, number>();
  app.get(
    '/api/stream',
    {
      websocket: true,
      schema: { summary: 'Live state changes (WebSocket)' },
      // Before the upgrade, so that a refused page gets a 403 and never a socket.
      preValidation: async (request) => {
        await refuseForeignPage(ctx, request);
        const tokenId = request.principal?.tokenId;
        if (tokenId !== undefined && (open.get(tokenId) ?? 0) >= MAX_STREAMS_PER_TOKEN) {
          throw new HubError(
            429,
            'too_many_streams',
            `${MAX_STREAMS_PER_TOKEN} streams are open with this token already: close one before opening another`,
          );
        }
      },
    },
    (socket, request) => {
      const principal = principalOf(request);
      const { householdId, tokenId } = principal;
      open.set(tokenId, (open.get(tokenId) ?? 0) + 1);
      // The stream shows no more than the HTTP API would. Its `event` messages (a car's trips
      // and charging sessions, automation runs, who came and went) are the household's record,
      // which HTTP serves under GET /api/events: whoever that route refuses (a guest) gets a
      // thing's current state here, and none of them.
      const seesEventLog =
        !ctx.security || ctx.security.permissions.routeRefusal(principal, 'GET', EVENT_LOG_ROUTE) === null;
      // Guests see only the things they were given, on the stream as everywhere else.
      const visible = (thing: string | undefined) =>
        !ctx.security ||
        (thing === undefined
          ? ctx.security.permissions.roleOf(principal) !== 'guest'
          : ctx.security.permissions.canSee(principal, thing));
      // A guest's own commands only, as under GET /api/commands/{id}: the others' say who issued them.
      const showsCommand = commandsShownTo(ctx, principal);
      const guestCauses = causesShownToGuest(ctx, principal, showsCommand);
      let subscribed: Set<string> | 'all' | null = null;
      /** Counts subscribe and unsubscribe messages: a snapshot still being sent stops at the next one. */
      let generation = 0;

      const send = (message: unknown) => {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
          socket.close(1013, 'too slow: messages were piling up');
          return;
        }
        socket.send(JSON.stringify(message));
      };
      const wants = (thing: string | undefined) =>
        subscribed === 'all' || (subscribed !== null && thing !== undefined && subscribed.has(thing));

      // An observer: it hears a state change before the rule run it starts (see LocalBus).
      const unsubscribe = ctx.bus.subscribe(
        (event: HubEvent) => {
          if (event.householdId !== householdId || subscribed === null) return;
          if (event.type === 'command') {
            if (!showsCommand(event.command)) return;
            guestCauses?.heard(event.command);
          }
          const message = streamMessage(event);
          if (guestCauses && message?.type === 'state' && !guestCauses.shows(message.cause)) message.cause = null;
          if (!message || (message.type === 'event' && !seesEventLog)) return;
          if (wants(message.thing) && visible(message.thing)) send(message);
        },
        { observer: true },
      );

      const refuse = (code: string, message: string) => send({ type: 'error', error: { code, message } });

      // A refused message changes nothing: the subscription before it stays as it was.
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        const parsed = isBinary ? null : parseMessage(data);
        if (!parsed || (parsed.type !== 'subscribe' && parsed.type !== 'unsubscribe')) {
          refuse('bad_message', 'expected {"type":"subscribe","things":["*"]}');
          return;
        }
        const extra = Object.keys(parsed).filter((key) => !MESSAGE_FIELDS.has(key));
        if (extra.length) {
          refuse(
            'bad_message',
            `unknown field ${extra.map((key) => JSON.stringify(key.slice(0, 40))).join(', ')}: the stream is filtered by thing only, {"type":"subscribe","things":[ids or "*"],"snapshot"?:true}`,
          );
          return;
        }
        if (parsed.type === 'unsubscribe') {
          // `{"type":"unsubscribe","things":["a"]}` reads as "stop a", but it would stop everything.
          if (parsed.things !== undefined || parsed.snapshot !== undefined) {
            refuse(
              'bad_message',
              'unsubscribe takes no things or snapshot: it stops the whole subscription; to narrow it, subscribe again with the ids you want',
            );
            return;
          }
          generation++;
          subscribed = null;
          send({ type: 'unsubscribed' });
          return;
        }
        // A client that asked for a snapshot in another spelling ("yes", 1) would wait for a
        // snapshot.end that never comes.
        if (parsed.snapshot !== undefined && typeof parsed.snapshot !== 'boolean') {
          refuse('bad_message', 'snapshot must be true or false');
          return;
        }
        // Left out, `things` is everything; `null` is a mistake, not a way of saying "all".
        const things = parsed.things === undefined ? ['*'] : parsed.things;
        if (!Array.isArray(things) || !things.every((t) => typeof t === 'string')) {
          refuse('bad_message', 'things must be a list of thing ids or ["*"]');
          return;
        }
        if (things.length > MAX_SUBSCRIBED_THINGS) {
          refuse(
            'bad_message',
            `at most ${MAX_SUBSCRIBED_THINGS} things in one subscription (${things.length} asked); subscribe to ["*"] for all`,
          );
          return;
        }
        // A misspelt id would otherwise be a subscription that silently never says anything. A
        // thing a guest was not given is, to them, a thing that does not exist.
        const unknown = (things as string[]).filter(
          (id) => id !== '*' && (!ctx.twins.get(householdId, id) || !visible(id)),
        );
        if (unknown.length) {
          refuse(
            'not_found',
            `no thing ${unknown
              .slice(0, 5)
              .map((id) => JSON.stringify(id.slice(0, 128)))
              .join(', ')} in your household: subscribe to ids from GET /api/things, or ["*"]`,
          );
          return;
        }
        subscribed = things.includes('*') ? 'all' : new Set(things as string[]);
        const mine = ++generation;
        send({ type: 'subscribed', things });
        if (parsed.snapshot === true) {
          // Sent over many turns: a failure ends this stream, never the hub (an unhandled rejection).
          sendSnapshot(mine).catch(() => socket.close(1011, 'the snapshot could not be sent'));
        }
      });

      /** Sends a message and resolves once it, and all before it, is written out, or the socket is gone. */
      const sendWritten = (message: unknown) =>
        new Promise<void>((resolve) => {
          if (socket.readyState !== socket.OPEN) return resolve();
          const done = () => {
            socket.off('close', done);
            resolve();
          };
          socket.once('close', done);
          socket.send(JSON.stringify(message), done);
        });

      // Paced by the client: a household of thousands of things is many megabytes, which the hub
      // neither holds at once nor takes for a client that is too slow. Changes that happen
      // meanwhile go out as they come; each thing's snapshot is its state when it is sent.
      const sendSnapshot = async (mine: number) => {
        for (const twin of ctx.twins.list(householdId)) {
          if (mine !== generation || socket.readyState !== socket.OPEN) return;
          const id = twin.thing.id;
          // A thing removed while the snapshot was under way is not in it.
          if (ctx.twins.get(householdId, id) !== twin || !wants(id) || !visible(id)) continue;
          const message = { type: 'thing', thing: id, snapshot: thingView(twin) };
          if (socket.bufferedAmount > SNAPSHOT_PAUSE_BYTES) await sendWritten(message);
          else send(message);
        }
        send({ type: 'snapshot.end' });
      };

      // A client that has not answered the last ping (nor said anything since) is gone: a phone
      // that changed networks leaves a connection no packet ends, and its subscription would
      // stay on the bus, and its messages pile up, for as long as the kernel keeps trying.
      let answered = true;
      let pingedAt = 0;
      const heard = () => {
        answered = true;
      };
      socket.on('pong', heard);
      socket.on('message', heard);
      const stopPing = ctx.clock.setInterval(() => {
        if (socket.readyState !== socket.OPEN) return;
        if (!answered) {
          // The wait is judged in real time: a virtual clock (tests, replays) runs many intervals
          // in a moment, in which no client could answer.
          if (performance.now() - pingedAt >= PONG_TIMEOUT_MS) socket.terminate();
          return;
        }
        answered = false;
        pingedAt = performance.now();
        socket.ping();
      }, PING_INTERVAL_MS);
      // The stream lives as long as its token: revoked or expired, it closes (1008, policy
      // violation), and the client must come back with a token that works.
      const stopWatching = ctx.tokens.whileValid(principal, (reason) => {
        if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(1008, reason);
      });
      let ended = false;
      const close = () => {
        if (ended) return;
        ended = true;
        unsubscribe();
        stopPing();
        stopWatching();
        const left = (open.get(tokenId) ?? 1) - 1;
        if (left > 0) open.set(tokenId, left);
        else open.delete(tokenId);
      };
      socket.on('close', close);
      socket.on('error', close);
    },
  );
}

/** How many of their own commands a guest's stream remembers, to show them as causes. */
const MAX_REMEMBERED_COMMANDS = 1000;

/**
 * Which causes of state changes a guest is shown, or null for everyone else, who sees them all
 * (so their messages pay for no look-up). A state change's cause names the command that made it,
 * or the event that did: someone else's command is, to a guest, one that does not exist (see
 * commandsShownTo), and its id is no more theirs to hold than the command itself; the events
 * are the household's record, which a guest is not shown either. So a guest sees a cause only
 * when it is a command of their own: one still open or not yet written (a device's report
 * settles a command just after the change it made), or one this stream has told them of.
 */
function causesShownToGuest(
  ctx: ApiContext,
  principal: Principal,
  showsCommand: (command: Command) => boolean,
): { heard(command: Command): void; shows(cause: unknown): boolean } | null {
  if (ctx.security?.permissions.roleOf(principal) !== 'guest') return null;
  const own = new Set<string>();
  return {
    heard(command) {
      if (own.has(command.id)) return;
      if (own.size >= MAX_REMEMBERED_COMMANDS) own.delete(own.values().next().value as string);
      own.add(command.id);
    },
    shows(cause) {
      if (typeof cause !== 'string') return false;
      if (own.has(cause)) return true;
      const command = ctx.commands.get(cause);
      return command?.householdId === principal.householdId && showsCommand(command);
    },
  };
}

/** The HTTP route of the event log; see `seesEventLog`. */
const EVENT_LOG_ROUTE = '/api/events';

/**
 * Refuses (403) a stream opened with the dashboard's session cookie from a page that is not the
 * hub's own. A browser sends a SameSite=Strict cookie from any page of the same site (another
 * port on the same host, say), and a WebSocket has no CSRF token to check: the Origin the browser
 * sets is what tells the hub's page from another one. A bearer token (header or `?token=`) is
 * never added by a browser on its own, so it is not checked; nor is a request without Origin,
 * which no browser opens.
 */
async function refuseForeignPage(ctx: ApiContext, request: FastifyRequest): Promise<void> {
  const origin = request.headers.origin;
  if (origin === undefined || presentedToken(request, true) !== null || isOwnOrigin(request, origin)) return;
  const reason = `a signed-in browser may open the stream only from the hub's own pages, not from ${JSON.stringify(origin.slice(0, 100))}`;
  const principal = request.principal;
  if (ctx.security && principal) {
    ctx.security.audit.record({
      householdId: principal.householdId,
      actor: ctx.security.actorOf(principal),
      via: 'http',
      action: 'GET /api/stream',
      result: 'denied',
      reason,
    });
  }
  throw new HubError(403, 'forbidden', reason);
}

/**
 * Whether a browser's Origin is where the request came to: the same scheme, host and port (a
 * default port written or left out alike). That is the connection's own scheme and the Host
 * header, or, from a reverse proxy the hub was told to trust (`--trust-proxy`), its
 * X-Forwarded-Proto and X-Forwarded-Host: Fastify's request.protocol and request.host (with the
 * port) read them only then, so a client that writes them itself is judged by its connection.
 */
function isOwnOrigin(request: FastifyRequest, origin: string): boolean {
  const host = request.host;
  if (!host) return false;
  try {
    const own = new URL(`${request.protocol}://${host}`).origin;
    // A forwarded scheme that is no web one (`X-Forwarded-Proto: foo`) has the opaque origin
    // "null", as a sandboxed page does: the two must not pass as equal.
    return own !== 'null' && new URL(origin).origin === own;
  } catch {
    // `Origin: null` (a sandboxed frame, a file) or anything else that is no URL: not the hub.
    return false;
  }
}

function parseMessage(data: Buffer): ClientMessage | null {
  try {
    const value: unknown = JSON.parse(data.toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as ClientMessage) : null;
  } catch {
    return null;
  }
}

type StreamMessage = Record<string, unknown> & { thing?: string };

/** The stream's wire shape for a hub event, or null for events the stream does not carry. */
export function streamMessage(event: HubEvent): StreamMessage | null {
  switch (event.type) {
    case 'state':
      return {
        type: 'state',
        thing: event.thing,
        property: event.property,
        value: event.to,
        ts: iso(event.ts),
        id: event.id,
        cause: event.cause ?? null,
      };
    case 'command':
      return { type: 'command', thing: event.command.thing, command: commandView(event.command), ts: iso(event.ts) };
    case 'availability':
      return { type: 'availability', thing: event.thing, online: event.online, ts: iso(event.ts) };
    case 'thing.added':
    case 'thing.updated':
    case 'thing.removed':
      return { type: event.type, thing: event.thing, ts: iso(event.ts) };
    default:
      return {
        type: 'event',
        event: event.type,
        thing: event.thing,
        data: ('data' in event ? event.data : undefined) ?? {},
        ts: iso(event.ts),
        id: event.id,
      };
  }
}
