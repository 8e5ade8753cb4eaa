import type { Clock } from '../core/clock.ts';
import type { TwinRegistry } from '../core/twin.ts';
import type { Thing, ThingKind } from '../model/thing.ts';
import { type AccountDirectory, type GuestPass, isRole } from './accounts.ts';
import type { Principal } from './tokens.ts';

/** A guest pass's token carries `pass:<id>` among its scopes; that is how a request finds its pass. */
export const PASS_SCOPE_PREFIX = 'pass:';
/** The first-start owner token's scope: it may create households. */
export const SERVER_SCOPE = 'server';
/** Tokens minted by `POST /api/session` carry this scope; only they need a CSRF token. */
export const SESSION_SCOPE = 'session';

export function passIdOf(principal: Pick<Principal, 'scopes'>): string | null {
  const scope = principal.scopes.find((s) => s.startsWith(PASS_SCOPE_PREFIX));
  return scope ? scope.slice(PASS_SCOPE_PREFIX.length) : null;
}

/** Routes only owners reach: people's accounts, what they may do, and the record of it. */
const OWNER_ROUTES = ['/api/users', '/api/grants', '/api/guest-passes', '/api/devices', '/api/audit', '/api/tokens'];

/** What a guest (a pass, or a guest account) may call: the things they were given, and nothing else. */
const GUEST_ROUTES = new Set([
  'GET /api/things',
  'GET /api/things/:id',
  'GET /api/things/:id/td',
  'GET /api/things/:id/properties/:property',
  'POST /api/things/:id/actions/:action',
  // A car they were given, as a car: listed and shown like under /api/things (each route shows
  // only the cars the guest sees); its actions run through /api/things/{id}/actions, checked there.
  'GET /api/vehicles',
  'GET /api/vehicles/:id',
  'GET /api/commands/:id',
  'GET /api/stream',
  'GET /api/session',
  'DELETE /api/session',
]);

/**
 * A thing's past: who came and went, when the door was opened. A guest may see and use what they
 * were given as it is now; its past is the household's own record.
 */
const HISTORY_ROUTES = new Set([
  'GET /api/things/:id/history',
  'GET /api/events',
  'GET /api/vehicles/:id/trips',
  'GET /api/vehicles/:id/charging-sessions',
]);

/** Unsafe calls a child may make besides reading: running actions (each one still checked) and signing out. */
const CHILD_WRITES = new Set(['POST /api/things/:id/actions/:action', 'DELETE /api/session']);

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The one account route a person who is not an owner may call, for their own password. */
export const OWN_PASSWORD_ROUTE = 'PUT /api/users/:id/password';

/**
 * Who may do what. Owners: everything in their household, including accounts. Adults: every
 * command and every setting, but no accounts. Children: reading, and only the commands a grant
 * names; unlocking and anything on a vehicle need a grant that names that thing and action
 * outright (a `*` grant never covers them). Guests: only the things and actions of their pass or
 * grants, only while the pass is valid, and they see nothing else; a pass is held to the same
 * rule as a grant (its `*` never covers unlocking or a car), and a guest's `*` shows only the
 * home's devices, never a person, a tracker or a car.
 */
export class Permissions {
  constructor(
    private readonly options: { accounts: AccountDirectory; clock: Clock; twins: Pick<TwinRegistry, 'get'> },
  ) {}

  /** Why a principal may not call a route (Fastify's pattern, e.g. `/api/things/:id`), or null. */
  routeRefusal(principal: Principal, method: string, route: string): string | null {
    const key = `${method} ${route}`;
    if (route === '/api/households' || route.startsWith('/api/households/')) {
      return principal.scopes.includes(SERVER_SCOPE)
        ? null
        : 'only the server owner (the first-start token) may manage households';
    }
    const role = this.roleOf(principal);
    if (role === 'owner') return null;
    // Anyone signed in as a person may change their own password (the route checks it is theirs,
    // and that they know the current one); everything else about accounts is the owners'.
    if (key === OWN_PASSWORD_ROUTE && principal.userId !== null && passIdOf(principal) === null) return null;
    if (OWNER_ROUTES.some((prefix) => route === prefix || route.startsWith(`${prefix}/`))) {
      return 'only owners may manage accounts, grants, guest passes, devices, tokens and the audit trail';
    }
    if (role === 'adult') return null;
    if (role === 'guest') return guestRouteRefusal(principal, key);
    if (SAFE_METHODS.has(method) || CHILD_WRITES.has(key)) return null;
    return 'a child may only read and run the actions they were granted';
  }

  /** Why a principal may not run `action` on `thing`, or null when they may. */
  commandRefusal(principal: Principal, thing: Thing, action: string): string | null {
    const passId = passIdOf(principal);
    if (passId !== null)
      return this.passRefusal(this.options.accounts.pass(principal.householdId, passId), thing, action);
    const role = this.roleOf(principal);
    if (role === 'owner' || role === 'adult') return null;
    const grants = principal.userId ? this.options.accounts.grantsOf(principal.householdId, principal.userId) : [];
    const sensitive = isSensitive(thing, action);
    const granted = grants.some((g) => covers(g.things, thing.id, sensitive) && covers(g.actions, action, sensitive));
    if (granted) return null;
    // The person's name: a token's own name ("Kim's phone") is not who is refused.
    const who =
      (principal.userId ? this.options.accounts.user(principal.householdId, principal.userId)?.name : undefined) ??
      principal.name;
    return sensitive
      ? `${action} on ${thing.id} needs a grant that names it (${role} accounts)`
      : `no grant lets ${who} run ${action} on ${thing.id}`;
  }

  /**
   * What a principal may run on a thing, action by action: `true`, or why not (the words of the
   * 403 it would get). Asked by clients (GET /api/session) so they offer only what commandRefusal
   * then allows.
   */
  actionsOn(principal: Principal, thing: Thing): Record<string, true | string> {
    return Object.fromEntries(
      Object.keys(thing.actions).map((action) => [action, this.commandRefusal(principal, thing, action) ?? true]),
    );
  }

  /**
   * What a principal may call, route by route (`GET /api/things/{id}`, as the OpenAPI document
   * names them): `true`, or why not (the words of the 403 it would get). Asked by clients (GET
   * /api/session) so they fetch and offer only what routeRefusal then allows.
   */
  routesFor(principal: Principal, routes: Array<{ method: string; path: string }>): Record<string, true | string> {
    return Object.fromEntries(
      routes.map(({ method, path }) => {
        const pattern = path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
        return [`${method} ${path}`, this.routeRefusal(principal, method, pattern) ?? true];
      }),
    );
  }

  /** Whether a principal may see a thing now: guests see only what they were given. */
  canSee(principal: Principal, thingId: string): boolean {
    return this.sees(principal, thingId, { anyTime: false });
  }

  /**
   * Whether a principal may see a thing at some time: a guest pass's things before, during and
   * after its window (never once it is revoked). For a connection that outlives one moment (a VISS
   * session), which then asks passWindowRefusal at each request.
   */
  wasGiven(principal: Principal, thingId: string): boolean {
    return this.sees(principal, thingId, { anyTime: true });
  }

  private sees(principal: Principal, thingId: string, when: { anyTime: boolean }): boolean {
    const passId = passIdOf(principal);
    if (passId !== null) {
      // Outside its window a pass sees nothing, wherever it is shown (the API's hook refuses it
      // first; routes outside /api ask here).
      const pass = this.options.accounts.pass(principal.householdId, passId);
      if (!pass || pass.revokedAt !== null) return false;
      return (
        (when.anyTime || this.outsideWindow(pass) === null) &&
        covers(pass.things, thingId, this.seenOnlyByName(principal.householdId, thingId))
      );
    }
    if (this.roleOf(principal) !== 'guest') return true;
    const grants = principal.userId ? this.options.accounts.grantsOf(principal.householdId, principal.userId) : [];
    const byNameOnly = this.seenOnlyByName(principal.householdId, thingId);
    return grants.some((g) => covers(g.things, thingId, byNameOnly));
  }

  /**
   * Whether a guest sees this thing only when their pass or grant names it (see wildcardShows). A
   * thing the hub does not know is not reached by `*` either: there is nothing of it to show.
   */
  private seenOnlyByName(householdId: string, thingId: string): boolean {
    const kind = this.options.twins.get(householdId, thingId)?.thing.kind;
    return kind === undefined || !wildcardShows(kind);
  }

  /** A token's role; an unknown role (a device or integration token) gets a guest's narrow rights. */
  roleOf(principal: Principal): 'owner' | 'adult' | 'child' | 'guest' {
    if (passIdOf(principal) !== null) return 'guest';
    return isRole(principal.role) ? principal.role : 'guest';
  }

  /**
   * Why a guest pass may do nothing at all right now (revoked, or outside its window), or null:
   * for any other principal, and for a pass inside its window.
   */
  passWindowRefusal(principal: Principal): string | null {
    const passId = passIdOf(principal);
    return passId === null ? null : this.outsideWindow(this.options.accounts.pass(principal.householdId, passId));
  }

  private outsideWindow(pass: GuestPass | undefined): string | null {
    if (!pass || pass.revokedAt !== null) return 'this guest pass was revoked';
    const now = this.options.clock.now();
    if (now < pass.from || now >= pass.to) {
      return `this guest pass is valid from ${new Date(pass.from).toISOString()} to ${new Date(pass.to).toISOString()}`;
    }
    return null;
  }

  private passRefusal(pass: GuestPass | undefined, thing: Thing, action: string): string | null {
    const outside = this.outsideWindow(pass);
    if (outside !== null || !pass) return outside;
    // The same rule as for a grant: a pass made with `*` for its actions (the dog walker's "the
    // door and the light, whatever they do") must not open the door.
    const sensitive = isSensitive(thing, action);
    if (covers(pass.things, thing.id, sensitive) && covers(pass.actions, action, sensitive)) return null;
    const byWildcard = covers(pass.things, thing.id, false) && covers(pass.actions, action, false);
    return byWildcard
      ? `${action} on ${thing.id} needs a guest pass that names it: "*" never covers unlocking or a car`
      : `this guest pass does not include ${action} on ${thing.id}`;
  }
}

/** Why a guest (a pass, or a guest account with grants) may not call a route, or null. */
function guestRouteRefusal(principal: Principal, key: string): string | null {
  if (GUEST_ROUTES.has(key)) return null;
  if (HISTORY_ROUTES.has(key)) {
    return passIdOf(principal) !== null
      ? "a guest pass shows a thing's current state, not its history"
      : "a guest account shows a thing's current state, not its history";
  }
  return 'a guest may only see and use the things they were given';
}

/** Opening a door and moving or opening a car are the actions a household guards most. */
function isSensitive(thing: Thing, action: string): boolean {
  return thing.kind === 'vehicle' || action === 'unlock';
}

/**
 * What a guest's `*` shows: the home's devices (lights, locks, sensors). Everything else tells
 * where the household is or what it owns: a person or tracker (where they are, live), the
 * household (whether anyone is home), a car (where it is), zones, chargers and the energy site.
 */
function wildcardShows(kind: ThingKind): boolean {
  return kind === 'device';
}

/** A sensitive thing or action is covered only by its own name, never by `*`. */
function covers(list: string[], value: string, sensitive: boolean): boolean {
  return list.includes(value) || (!sensitive && list.includes('*'));
}
