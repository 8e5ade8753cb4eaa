import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ApiContext, principalOf, type RouteModule } from '../api/server.ts';
import { parseTime } from '../api/things.ts';
import { NAME_PATTERN } from '../api/views.ts';
import { badRequest, conflict, HubError, notFound } from '../core/errors.ts';
import { isHubFirstOwner } from '../core/households.ts';
import { newId } from '../core/ids.ts';
import { KeyedSerial } from '../core/serial.ts';
import { householdTimeZone, SITE_THING, siteTariffZone } from '../core/wall-time.ts';
import type { Thing } from '../model/thing.ts';
import { capabilities } from '../model/vocabulary.ts';
import type { Household, TokenRecord } from '../store/store.ts';
import { type GuestPass, ROLES, type User, userNameKey } from './accounts.ts';
import type { MqttDevice } from './devices.ts';
import { PASS_SCOPE_PREFIX, SERVER_SCOPE, SESSION_SCOPE } from './permissions.ts';
import { SESSION_TTL_MS, type Security } from './security.ts';
import { csrfTokenFor, sessionCookies } from './sessions.ts';
import type { Principal } from './tokens.ts';

export interface SecurityRoutesOptions {
  security: Security;
  /** Creates a household with its owner and first owner token (the hub wires its MQTT discovery). */
  createHousehold(name: string): Promise<{ household: Household; token: string }>;
  listHouseholds(): Promise<Household[]>;
}

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 128 } },
} as const;
const name = { type: 'string', minLength: 1, maxLength: 64, pattern: NAME_PATTERN } as const;
const password = { type: 'string', minLength: 1, maxLength: 200 } as const;
const idList = {
  type: 'array',
  minItems: 1,
  maxItems: 200,
  items: { type: 'string', minLength: 1, maxLength: 128 },
} as const;
const isoTime = { type: 'string', minLength: 1, maxLength: 64 } as const;
const tags = ['security'];

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Every action the capability vocabulary names (`turn_on`, `unlock`, `set_limit`…). */
const VOCABULARY_ACTIONS: ReadonlySet<string> = new Set(
  Object.values(capabilities).flatMap((capability) => Object.keys(capability.actions)),
);

/**
 * Why an action cannot be in a grant or a pass: none of its things has it (each named with the
 * actions it does have), or, for `*`, no thing and no capability has it.
 */
function noSuchAction(action: string, things: Thing[] | null): string {
  const name = JSON.stringify(action);
  if (things === null) return `no action ${name} on any thing, nor in the vocabulary`;
  const lacking = things.map((thing) => `${thing.id} (actions: ${Object.keys(thing.actions).join(', ') || 'none'})`);
  return `no action ${name} on ${lacking.join(' or ')}`;
}

export const userView = (u: User) => ({
  id: u.id,
  name: u.name,
  role: u.role,
  householdId: u.householdId,
  hasPassword: u.passwordHash !== null,
  createdAt: iso(u.createdAt),
});

/** `true`, or why not: the words of the 403 the hub would answer. */
const allowedOrWhy = {
  anyOf: [{ type: 'boolean', const: true }, { type: 'string' }],
} as const;

/**
 * What `GET /api/session` answers. Fastify also writes the answer with it, so a field missing here
 * would be left out of the answer: the test of the schema checks real answers against it.
 */
const sessionSchema = {
  type: 'object',
  required: ['householdId', 'timeZone', 'user', 'role', 'token', 'actions', 'routes'],
  additionalProperties: false,
  properties: {
    householdId: { type: 'string' },
    timeZone: {
      type: 'string',
      description:
        "The household's time zone (IANA, e.g. `Europe/Amsterdam`): its tariff's `timeZone`, else the hub's own (its `TZ`, UTC when unset). Automations' times and weekdays, and a plan's time of day and weekdays, are on its clocks",
    },
    user: {
      description: 'The signed-in account; null for a token of no account (a guest pass)',
      anyOf: [
        {
          type: 'object',
          required: ['id', 'name', 'role', 'householdId', 'hasPassword', 'createdAt'],
          additionalProperties: false,
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            role: { type: 'string', enum: [...ROLES] },
            householdId: { type: 'string' },
            hasPassword: { type: 'boolean' },
            createdAt: { type: ['string', 'null'] },
          },
        },
        { type: 'null' },
      ],
    },
    role: {
      type: 'string',
      enum: [...ROLES],
      description: 'What the hub treats you as; a guest pass, or a token of no known role, is a guest',
    },
    token: {
      type: 'object',
      required: ['id', 'name', 'scopes'],
      additionalProperties: false,
      properties: {
        id: { type: 'string' },
        name: { type: 'string' },
        scopes: { type: 'array', items: { type: 'string' } },
      },
    },
    actions: {
      type: 'object',
      description: 'For each thing you see (by id), each of its actions: true, or why you may not run it',
      additionalProperties: { type: 'object', additionalProperties: allowedOrWhy },
    },
    routes: {
      type: 'object',
      description:
        'Each route the hub serves, as `METHOD /path` of this document (e.g. `GET /api/energy/plans`): true, or why you may not call it',
      additionalProperties: allowedOrWhy,
    },
  },
} as const;

/**
 * The household's time zone: its tariff's (kept by the energy service on the household's `site`
 * thing), else the hub process's own, as its automations and charge plans read it.
 */
function sessionTimeZone(ctx: ApiContext, householdId: string): string {
  return householdTimeZone(siteTariffZone(ctx.twins.get(householdId, SITE_THING)?.thing));
}

const tokenView = (t: TokenRecord) => ({
  id: t.id,
  name: t.name,
  user: t.userId,
  role: t.role,
  scopes: t.scopes,
  createdAt: iso(t.createdAt),
  expiresAt: iso(t.expiresAt),
  revokedAt: iso(t.revokedAt),
});

const passView = (p: GuestPass) => ({
  id: p.id,
  name: p.name,
  things: p.things,
  actions: p.actions,
  from: iso(p.from),
  to: iso(p.to),
  revokedAt: iso(p.revokedAt),
});

const deviceView = (d: MqttDevice) => ({
  id: d.id,
  name: d.name,
  username: d.username,
  publish: d.publish,
  subscribe: d.subscribe,
  createdAt: iso(d.createdAt),
});

/**
 * Accounts, sessions, tokens, grants, guest passes, MQTT device accounts, households and the
 * audit trail. Which roles reach which route is decided centrally (Permissions.routeRefusal);
 * these handlers check only what is particular to them.
 */
export function securityRoutes(options: SecurityRoutesOptions): RouteModule {
  const { security } = options;
  const { accounts, audit, tokens } = security;

  const record = (principal: Principal, action: string, reason: string | null = null) =>
    audit.record({
      householdId: principal.householdId,
      actor: security.actorOf(principal),
      via: 'http',
      action,
      result: 'accepted',
      reason,
    });

  /**
   * Changes to a household's accounts, tokens, grants, passes and devices, one at a time. Each
   * checks and then awaits the store: two owners demoting each other at once both passed the
   * last-owner check and left the household with none, and a token an owner made for themselves
   * while being demoted was missed by the demotion's revocations and kept the owner role. In
   * turn, each change first asks whether its caller's token survived the ones before it.
   */
  const changes = new KeyedSerial();
  const changeIn = <T>(
    request: FastifyRequest,
    change: (principal: Principal, householdTokens: TokenRecord[]) => Promise<T>,
  ): Promise<T> => {
    const principal = principalOf(request);
    return changes.run(principal.householdId, async () => {
      // Read in the change's turn, so the change may act on the same list (a demotion's revocations).
      const householdTokens = await security.store.listTokens(principal.householdId);
      const own = householdTokens.find((t) => t.id === principal.tokenId);
      if (own !== undefined && own.revokedAt !== null && own.revokedAt <= security.clock.now())
        throw new HubError(401, 'unauthorized', 'your token was revoked (by a change made just before this one)');
      return change(principal, householdTokens);
    });
  };

  /** Tries of one name's password from one address, by sign-in or by changing it, share one limit. */
  const passwordTryKey = (userName: string, ip: string) => `${userNameKey(userName)}\u0000${ip}`;
  const waitBetweenPasswordTries = (key: string, ip: string, reply: FastifyReply) => {
    const wait = Math.max(security.signInLimiter.take(key), security.signInAddressLimiter.take(ip));
    if (wait > 0) {
      void reply.header('retry-after', String(wait));
      throw new HubError(429, 'too_many_requests', `too many password attempts; try again in ${wait} s`);
    }
  };

  /** A user of the caller's household, by id or by name. */
  const findUser = (householdId: string, key: string): User => {
    const user = accounts.user(householdId, key) ?? accounts.userNamed(householdId, key);
    if (!user) throw notFound(`user ${JSON.stringify(key)}`);
    return user;
  };

  /**
   * The ids of a grant's or a pass's things, each a thing of the household (or `*`, for a grant):
   * one that does not exist would grant nothing now and, worse, whatever later takes that id.
   */
  const knownThings = (ctx: ApiContext, householdId: string, ids: string[]): string[] => {
    const unknown = ids.filter((id) => id !== '*' && !ctx.twins.get(householdId, id));
    if (unknown.length) throw notFound(`thing ${unknown.map((id) => JSON.stringify(id)).join(', ')}`);
    return [...new Set(ids)];
  };

  /**
   * A grant's or a pass's actions, each `*` (any) or one that at least one of its things has: an
   * action none of them has would let nobody do anything, while reading as if it did. Not every
   * thing needs every action: a pass for the front door and the hall light may hold `unlock` and
   * `turn_on`, each for the thing that has it. With `*` for things, an action is known when the
   * vocabulary or any thing of the household has it. Call after knownThings.
   */
  const knownActions = (ctx: ApiContext, householdId: string, thingIds: string[], actions: string[]): string[] => {
    const wanted = [...new Set(actions)].filter((action) => action !== '*');
    const everyThing = thingIds.includes('*');
    const things = (everyThing ? ctx.twins.list(householdId) : thingIds.map((id) => ctx.twins.get(householdId, id)))
      .filter((twin) => twin !== undefined)
      .map((twin) => twin.thing);
    const missing = wanted.filter(
      (action) =>
        !things.some((thing) => Object.hasOwn(thing.actions, action)) &&
        !(everyThing && VOCABULARY_ACTIONS.has(action)),
    );
    if (missing.length)
      throw badRequest(missing.map((action) => noSuchAction(action, everyThing ? null : things)).join('; '));
    return [...new Set(actions)];
  };

  return async (app: FastifyInstance, ctx: ApiContext) => {
    // ---- sessions ---------------------------------------------------------------------------
    app.post(
      '/api/session',
      {
        config: { public: true },
        schema: {
          summary: 'Sign in with a name and password; sets the session cookie and answers the CSRF token',
          tags,
          security: [],
          body: {
            type: 'object',
            required: ['name', 'password'],
            additionalProperties: false,
            properties: { name, password, household: { type: 'string', minLength: 1, maxLength: 128 } },
          },
        },
      },
      async (request, reply) => {
        const body = request.body as { name: string; password: string; household?: string };
        // request.ip is the client's own address, also behind a reverse proxy the hub was told to
        // trust (`--trust-proxy`, from its X-Forwarded-For): else one stranger's failures, all
        // from the proxy's address, would lock out the whole household.
        const key = passwordTryKey(body.name, request.ip);
        waitBetweenPasswordTries(key, request.ip, reply);
        const user = await accounts.signIn(body.name, body.password, body.household);
        if (user === 'ambiguous')
          throw badRequest('several households have a user of that name and password: say which household');
        if (!user) {
          // Only into a household that exists: a stranger must not fill the trail of made-up ones.
          const household = body.household ?? null;
          if (household && accounts.listUsers(household).length > 0) {
            audit.record({
              householdId: household,
              actor: { kind: 'user', id: body.name.slice(0, 64), name: body.name.slice(0, 64) },
              via: 'http',
              action: 'session.create',
              result: 'denied',
              reason: 'wrong name or password',
            });
          }
          throw new HubError(401, 'unauthorized', 'wrong name or password');
        }
        security.signInLimiter.reset(key);
        const expiresAt = security.clock.now() + SESSION_TTL_MS;
        const { secret, record: token } = await tokens.create({
          householdId: user.householdId,
          userId: user.id,
          role: user.role,
          name: user.name,
          scopes: [SESSION_SCOPE],
          expiresAt,
        });
        audit.record({
          householdId: user.householdId,
          actor: { kind: 'user', id: user.id, name: user.name },
          via: 'http',
          action: 'session.create',
          result: 'accepted',
        });
        void reply.header(
          'set-cookie',
          sessionCookies({ secret, maxAgeSeconds: SESSION_TTL_MS / 1000, secure: request.protocol === 'https' }),
        );
        return {
          user: userView(user),
          csrfToken: csrfTokenFor(secret),
          sessionId: token.id,
          expiresAt: iso(expiresAt),
        };
      },
    );

    /**
     * Every route the hub serves, as its OpenAPI document names them, with whether anyone may call
     * it (`security: []`). Read from that document, the one list of routes there is (the things'
     * routes come before this module, so an onRoute hook here would miss them), once: routes are
     * all registered before the first request.
     */
    let served: Promise<Array<{ method: string; path: string; open: boolean }>> | null = null;
    const servedRoutes = () => {
      served ??= app.inject({ method: 'GET', url: '/api/openapi.json' }).then((answer) => {
        const doc = answer.json() as { paths: Record<string, Record<string, { security?: unknown[] }>> };
        return Object.entries(doc.paths).flatMap(([path, operations]) =>
          Object.entries(operations).map(([method, operation]) => ({
            method: method.toUpperCase(),
            path,
            open: Array.isArray(operation.security) && operation.security.length === 0,
          })),
        );
      });
      served.catch(() => {
        served = null;
      });
      return served;
    };

    app.get(
      '/api/session',
      {
        schema: {
          summary:
            'Who you are signed in as, the actions you may run on each thing you see, and the routes you may call',
          tags,
          response: { 200: sessionSchema },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const user = principal.userId ? accounts.user(principal.householdId, principal.userId) : undefined;
        const routes = await servedRoutes();
        return {
          householdId: principal.householdId,
          timeZone: sessionTimeZone(ctx, principal.householdId),
          user: user ? userView(user) : null,
          role: security.permissions.roleOf(principal),
          token: { id: principal.tokenId, name: principal.name, scopes: principal.scopes },
          // For each thing they see, what they may run on it, so a dashboard offers only that.
          actions: Object.fromEntries(
            ctx.twins
              .list(principal.householdId)
              .filter(({ thing }) => security.permissions.canSee(principal, thing.id))
              .map(({ thing }) => [thing.id, security.permissions.actionsOn(principal, thing)]),
          ),
          // And which routes they may call, so a dashboard asks only for what it will be given:
          // a refused request is a 403 and a `denied` line in the household's audit trail.
          routes: {
            ...Object.fromEntries(routes.filter((r) => r.open).map((r) => [`${r.method} ${r.path}`, true])),
            ...security.permissions.routesFor(
              principal,
              routes.filter((r) => !r.open),
            ),
          },
        };
      },
    );

    app.delete(
      '/api/session',
      { schema: { summary: 'Sign out: ends this session at once', tags } },
      async (request, reply) => {
        const principal = principalOf(request);
        if (principal.scopes.includes(SESSION_SCOPE)) await tokens.revokeById(principal.householdId, principal.tokenId);
        const secure = request.protocol === 'https';
        void reply.header('set-cookie', sessionCookies({ secret: '', maxAgeSeconds: 0, secure }));
        void reply.status(204);
      },
    );

    // ---- users ------------------------------------------------------------------------------
    /**
     * Refuses (409) taking an owner away, removed or demoted, when they are the household's last
     * owner (nobody could manage accounts, devices or the audit trail again) or the hub's first
     * owner (owner.token, owner.password and the sign-in printed at start are theirs).
     */
    const refuseLosingOwner = (householdId: string, user: User, householdTokens: TokenRecord[], how: string) => {
      const owners = accounts.listUsers(householdId).filter((u) => u.role === 'owner');
      if (owners.length <= 1)
        throw conflict(
          `${JSON.stringify(user.name)} is the household's last owner and cannot be ${how}; a household always keeps one`,
        );
      if (isHubFirstOwner(householdId, user.id, householdTokens))
        throw conflict(
          `${JSON.stringify(user.name)} is the hub's first owner: owner.token and owner.password in the data folder, and the sign-in the hub prints at start, are theirs, so they cannot be ${how} (set their password instead)`,
        );
    };

    app.get('/api/users', { schema: { summary: "Your household's users (owners only)", tags } }, async (request) =>
      accounts.listUsers(principalOf(request).householdId).map(userView),
    );

    app.post(
      '/api/users',
      {
        schema: {
          summary: 'Add a user to your household (owners only)',
          tags,
          body: {
            type: 'object',
            required: ['name', 'role', 'password'],
            additionalProperties: false,
            properties: { name, role: { type: 'string', enum: [...ROLES] }, password },
          },
        },
      },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          const body = request.body as { name: string; role: User['role']; password: string };
          const user = await accounts.createUser({ householdId: principal.householdId, ...body });
          record(principal, 'user.create', `${user.name} (${user.role})`);
          void reply.status(201);
          return userView(user);
        }),
    );

    app.put(
      '/api/users/:id/password',
      {
        schema: {
          summary:
            "Set a user's password (owners: anyone's; everyone else: their own, with currentPassword); the user's other sessions end at once",
          tags,
          params: idParam,
          body: {
            type: 'object',
            required: ['password'],
            additionalProperties: false,
            properties: { password, currentPassword: password },
          },
        },
      },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          const user = findUser(principal.householdId, (request.params as { id: string }).id);
          const body = request.body as { password: string; currentPassword?: string };
          const caller = principal.userId ? accounts.user(principal.householdId, principal.userId) : undefined;
          if (caller?.role !== 'owner') {
            // A person who is not an owner changes their own password only, and proves they know it:
            // a session left open on a shared tablet must not be enough to lock its owner out.
            if (!caller || caller.id !== user.id)
              throw new HubError(403, 'forbidden', "only owners may set another person's password");
            if (body.currentPassword === undefined)
              throw badRequest('currentPassword is needed to change your own password');
            // A guess here is a guess at the password, counted with the sign-in's: an open session
            // (a shared tablet) must not try a hundred a second, and each costs the hub a scrypt.
            const key = passwordTryKey(user.name, request.ip);
            waitBetweenPasswordTries(key, request.ip, reply);
            if (!(await accounts.checkPassword(user, body.currentPassword)))
              throw new HubError(403, 'forbidden', 'currentPassword is not your current password');
            security.signInLimiter.reset(key);
          }
          await accounts.setPassword(user, body.password);
          // Whoever knew the old password is signed out: every session of that user ends, except
          // the one that made the change (an owner changing their own password stays signed in).
          let ended = 0;
          for (const token of await security.store.listTokens(principal.householdId)) {
            if (token.userId !== user.id || token.id === principal.tokenId || token.revokedAt !== null) continue;
            if (!token.scopes.includes(SESSION_SCOPE)) continue;
            await tokens.revoke(token);
            ended++;
          }
          record(principal, 'user.password', ended ? `${user.name}; sessions ended: ${ended}` : user.name);
          void reply.status(204);
        }),
    );

    app.put(
      '/api/users/:id/role',
      {
        schema: {
          summary:
            "Change a user's role (owners only); their sessions and API tokens end at once, to be made again with the new role",
          tags,
          params: idParam,
          body: {
            type: 'object',
            required: ['role'],
            additionalProperties: false,
            properties: { role: { type: 'string', enum: [...ROLES] } },
          },
        },
      },
      async (request) =>
        changeIn(request, async (principal, householdTokens) => {
          const user = findUser(principal.householdId, (request.params as { id: string }).id);
          const { role } = request.body as { role: User['role'] };
          if (role === user.role) return userView(user);
          // As with removing: an owner who demoted themselves by mistake could not undo it.
          if (user.id === principal.userId) throw badRequest('you cannot change your own role; another owner can');
          if (user.role === 'owner') refuseLosingOwner(principal.householdId, user, householdTokens, 'demoted');
          const updated = await accounts.setRole(user, role);
          // A token carries the role it was made with: every one of this user's is ended, so no
          // session, API token or open stream keeps the old role's rights (a demoted owner's least
          // of all). They sign in again, or are given new tokens, with the new role.
          let ended = 0;
          for (const token of householdTokens) {
            if (token.userId !== user.id || token.revokedAt !== null) continue;
            await tokens.revoke(token);
            ended++;
          }
          record(principal, 'user.role', `${user.name}: ${user.role} → ${role}; tokens and sessions ended: ${ended}`);
          return userView(updated);
        }),
    );

    app.delete(
      '/api/users/:id',
      { schema: { summary: 'Remove a user; their tokens and sessions stop working at once', tags, params: idParam } },
      async (request, reply) =>
        changeIn(request, async (principal, householdTokens) => {
          const user = findUser(principal.householdId, (request.params as { id: string }).id);
          if (user.id === principal.userId) throw badRequest('you cannot remove yourself');
          if (user.role === 'owner') refuseLosingOwner(principal.householdId, user, householdTokens, 'removed');
          await accounts.removeUser(principal.householdId, user.id);
          for (const token of householdTokens) {
            if (token.userId === user.id && token.revokedAt === null) await tokens.revoke(token);
          }
          record(principal, 'user.remove', user.name);
          void reply.status(204);
        }),
    );

    // ---- tokens -----------------------------------------------------------------------------
    app.get(
      '/api/tokens',
      { schema: { summary: "Your household's API tokens (owners only)", tags } },
      async (request) =>
        (await security.store.listTokens(principalOf(request).householdId))
          .filter((t) => !t.scopes.includes(SESSION_SCOPE))
          .map(tokenView),
    );

    app.post(
      '/api/tokens',
      {
        schema: {
          summary: "Create an API token acting as a user, with that user's role; the token is shown once",
          tags,
          body: {
            type: 'object',
            required: ['user', 'name'],
            additionalProperties: false,
            properties: { user: { type: 'string', minLength: 1, maxLength: 128 }, name, expiresAt: isoTime },
          },
        },
      },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          const body = request.body as { user: string; name: string; expiresAt?: string };
          const user = findUser(principal.householdId, body.user);
          const expiresAt = parseTime(body.expiresAt, 'expiresAt') ?? null;
          if (expiresAt !== null && expiresAt <= security.clock.now())
            throw badRequest('expiresAt must be in the future');
          const { secret, record: token } = await tokens.create({
            householdId: principal.householdId,
            userId: user.id,
            role: user.role,
            name: body.name.trim(),
            expiresAt,
          });
          record(principal, 'token.create', `${token.name} for ${user.name}`);
          void reply.status(201);
          return { ...tokenView(token), token: secret };
        }),
    );

    app.delete(
      '/api/tokens/:id',
      { schema: { summary: 'Revoke a token; it stops working at once', tags, params: idParam } },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          const { id } = request.params as { id: string };
          if (!(await tokens.revokeById(principal.householdId, id))) throw notFound(`token ${JSON.stringify(id)}`);
          // A guest pass's token ends its pass: listed as valid, the pass would mislead whoever
          // checks what is still out there (the guest is refused either way).
          const pass = accounts.listPasses(principal.householdId).find((p) => p.tokenId === id);
          if (pass && pass.revokedAt === null) await accounts.savePass({ ...pass, revokedAt: security.clock.now() });
          record(principal, 'token.revoke', id);
          void reply.status(204);
        }),
    );

    // ---- grants -----------------------------------------------------------------------------
    app.get('/api/grants', { schema: { summary: 'What each user may do beyond their role', tags } }, async (request) =>
      accounts.listGrants(principalOf(request).householdId),
    );

    app.post(
      '/api/grants',
      {
        schema: {
          summary: 'Let a user run some actions on some things ("*" for any; unlock and vehicles must be named)',
          tags,
          body: {
            type: 'object',
            required: ['user', 'things', 'actions'],
            additionalProperties: false,
            properties: { user: { type: 'string', minLength: 1, maxLength: 128 }, things: idList, actions: idList },
          },
        },
      },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          const body = request.body as { user: string; things: string[]; actions: string[] };
          const user = findUser(principal.householdId, body.user);
          const things = knownThings(ctx, principal.householdId, body.things);
          const actions = knownActions(ctx, principal.householdId, things, body.actions);
          const grant = await accounts.addGrant({
            householdId: principal.householdId,
            userId: user.id,
            things,
            actions,
          });
          record(principal, 'grant.create', `${user.name}: ${grant.actions.join(',')} on ${grant.things.join(',')}`);
          void reply.status(201);
          return grant;
        }),
    );

    app.delete(
      '/api/grants/:id',
      { schema: { summary: 'Remove a grant', tags, params: idParam } },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          await accounts.removeGrant(principal.householdId, (request.params as { id: string }).id);
          record(principal, 'grant.remove', (request.params as { id: string }).id);
          void reply.status(204);
        }),
    );

    // ---- guest passes -----------------------------------------------------------------------
    app.get('/api/guest-passes', { schema: { summary: "Your household's guest passes", tags } }, async (request) =>
      accounts.listPasses(principalOf(request).householdId).map(passView),
    );

    app.post(
      '/api/guest-passes',
      {
        schema: {
          summary: 'A guest pass: a token valid only from `from` to `to`, only for these things and actions',
          tags,
          body: {
            type: 'object',
            required: ['name', 'things', 'actions', 'from', 'to'],
            additionalProperties: false,
            properties: { name, things: idList, actions: idList, from: isoTime, to: isoTime },
          },
        },
      },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          const body = request.body as { name: string; things: string[]; actions: string[]; from: string; to: string };
          // A pass is for the things someone outside the household was asked to look after. `*`
          // would also hand them whatever is added later, and read as if it showed people and cars.
          if (body.things.includes('*')) {
            throw badRequest(
              'a guest pass names its things: "*" is not allowed for things (list the ids, e.g. ["front-door","hall-light"])',
            );
          }
          const things = knownThings(ctx, principal.householdId, body.things);
          const actions = knownActions(ctx, principal.householdId, things, body.actions);
          const from = parseTime(body.from, 'from') as number;
          const to = parseTime(body.to, 'to') as number;
          if (to <= from) throw badRequest('to must be after from');
          if (to <= security.clock.now()) throw badRequest('to must be in the future');
          const now = security.clock.now();
          const id = newId(now, 'gp_');
          const { secret, record: token } = await tokens.create({
            householdId: principal.householdId,
            name: body.name.trim(),
            role: 'guest',
            scopes: [PASS_SCOPE_PREFIX + id],
            expiresAt: to,
          });
          const pass: GuestPass = {
            id,
            householdId: principal.householdId,
            name: body.name.trim(),
            things,
            actions,
            from,
            to,
            tokenId: token.id,
            createdAt: now,
            revokedAt: null,
          };
          await accounts.savePass(pass);
          record(principal, 'guest_pass.create', `${pass.name}: ${pass.actions.join(',')} on ${pass.things.join(',')}`);
          void reply.status(201);
          return { ...passView(pass), token: secret };
        }),
    );

    app.delete(
      '/api/guest-passes/:id',
      { schema: { summary: 'Revoke a guest pass; it stops working at once', tags, params: idParam } },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          const pass = accounts.pass(principal.householdId, (request.params as { id: string }).id);
          if (!pass) throw notFound(`guest pass ${JSON.stringify((request.params as { id: string }).id)}`);
          await tokens.revokeById(principal.householdId, pass.tokenId);
          if (pass.revokedAt === null) await accounts.savePass({ ...pass, revokedAt: security.clock.now() });
          record(principal, 'guest_pass.revoke', pass.name);
          void reply.status(204);
        }),
    );

    // ---- MQTT devices -----------------------------------------------------------------------
    app.get('/api/devices', { schema: { summary: 'MQTT device accounts of your household', tags } }, async (request) =>
      security.broker.listDevices(principalOf(request).householdId).map(deviceView),
    );

    app.post(
      '/api/devices',
      {
        schema: {
          summary:
            'An MQTT account for a device: publishes only its state and discovery, receives only its commands; the password is shown once',
          tags,
          body: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              name,
              baseTopic: { type: 'string', minLength: 1, maxLength: 200 },
              publish: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 200 } },
              subscribe: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 200 } },
            },
          },
        },
      },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          const body = request.body as { name: string; baseTopic?: string; publish?: string[]; subscribe?: string[] };
          const { device, password: secret } = await security.broker.createDevice(principal.householdId, {
            ...body,
            name: body.name.trim(),
          });
          record(principal, 'device.create', device.name);
          void reply.status(201);
          return { ...deviceView(device), password: secret };
        }),
    );

    app.delete(
      '/api/devices/:id',
      { schema: { summary: 'Remove an MQTT device account', tags, params: idParam } },
      async (request, reply) =>
        changeIn(request, async (principal) => {
          await security.broker.removeDevice(principal.householdId, (request.params as { id: string }).id);
          record(principal, 'device.remove', (request.params as { id: string }).id);
          void reply.status(204);
        }),
    );

    // ---- audit ------------------------------------------------------------------------------
    app.get(
      '/api/audit',
      {
        schema: {
          summary:
            'Who did what, through which interface, to which thing, with what result; newest first (owners only)',
          tags,
          querystring: {
            type: 'object',
            properties: { since: isoTime, until: isoTime, limit: { type: 'integer', minimum: 1, maximum: 10000 } },
          },
        },
      },
      async (request) => {
        const query = request.query as { since?: string; until?: string; limit?: number };
        const lines = await audit.list({
          householdId: principalOf(request).householdId,
          since: parseTime(query.since, 'since'),
          until: parseTime(query.until, 'until'),
          limit: query.limit,
        });
        return lines.map((l) => ({ ...l, ts: iso(l.ts) }));
      },
    );

    // ---- households (server owner) ----------------------------------------------------------
    app.get(
      '/api/households',
      { schema: { summary: 'Every household on this hub (server owner only)', tags } },
      async (request) => {
        // Asked here as well as by the hook (Permissions.routeRefusal): this is every household's name.
        if (!principalOf(request).scopes.includes(SERVER_SCOPE))
          throw new HubError(403, 'forbidden', 'only the server owner (the first-start token) may list households');
        return (await options.listHouseholds()).map((h) => ({ id: h.id, name: h.name, createdAt: iso(h.createdAt) }));
      },
    );

    app.post(
      '/api/households',
      {
        schema: {
          summary: 'Add a household; answers it and its first owner token (server owner only)',
          tags,
          body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name } },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const { household, token } = await options.createHousehold((request.body as { name: string }).name.trim());
        record(principal, 'household.create', `${household.id} ${household.name}`);
        void reply.status(201);
        return { household: { id: household.id, name: household.name, createdAt: iso(household.createdAt) }, token };
      },
    );
  };
}
