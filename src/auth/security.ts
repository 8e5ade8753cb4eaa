import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bus } from '../core/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { CommandRequest, CommandService } from '../core/commands.ts';
import { forbidden, HubError, notFound } from '../core/errors.ts';
import type { Command, CommandRequester, HubEvent } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { TwinRegistry } from '../core/twin.ts';
import type { AuditActor, Store } from '../store/store.ts';
import { AccountDirectory, type User } from './accounts.ts';
import { AuditTrail, actorOf } from './audit.ts';
import { BrokerAccess, type BrokerLogin } from './devices.ts';
import { PASS_SCOPE_PREFIX, Permissions, SERVER_SCOPE } from './permissions.ts';
import { type RateLimit, RateLimiter } from './rate-limit.ts';
import type { Principal, TokenService } from './tokens.ts';

/** A token refused unread because its address presented too many unknown ones: 429, wait `retryAfter` s. */
export class TooManyUnknownTokens extends HubError {
  constructor(readonly retryAfter: number) {
    super(429, 'too_many_requests', `too many unknown tokens; try again in ${retryAfter} s`);
  }
}

/**
 * Verifies a token or session presented from `address`, counting the unknown ones per address:
 * once an address has presented too many, the next unknown one is refused (TooManyUnknownTokens)
 * without a lookup in the store. A stored token that still works is never held up, even one not
 * used since the hub started: a household behind one address (a home router, a reverse proxy) is
 * not locked out by one script of theirs that keeps presenting a stale token. One limiter for
 * every way in that takes a token (the HTTP API and its streams, the VISS endpoint), so an address
 * cannot guess on one after it was held up on another. Without a limiter it only verifies.
 */
export async function verifyCounting(
  tokens: TokenService,
  limiter: RateLimiter | undefined,
  address: string,
  secret: string,
  options: { keepExpired?: (scopes: string[]) => boolean } = {},
): Promise<Principal | null> {
  if (!limiter) return tokens.verify(secret, options);
  const unknown = () => {
    const wait = limiter.wait(address);
    if (wait > 0) throw new TooManyUnknownTokens(wait);
  };
  const principal = await tokens.verify(secret, { keepExpired: options.keepExpired, unknown });
  if (!principal) limiter.take(address);
  return principal;
}

export interface SecurityOptions {
  store: Store;
  tokens: TokenService;
  clock: Clock;
  bus: Bus;
  twins: TwinRegistry;
  commands: CommandService;
  log: Logger;
  defaultHouseholdId: string;
  /** Let clients without credentials use the embedded broker (the pre-accounts behaviour). */
  mqttAllowAnonymous?: boolean;
  /** Per token; default a burst of 600 and 100 per second. */
  apiRate?: RateLimit;
  /** Per name and address; default 5 tries, then one every 12 s (5 a minute). */
  signInRate?: RateLimit;
  /** Unknown tokens and sessions per address; default 50, then 5 a second. */
  unknownTokenRate?: RateLimit;
}

/** Audit lines a minute for one MQTT account's refused publishes and subscriptions (see brokerRefused). */
export const BROKER_REFUSALS_PER_MINUTE = 10;

/** How long a dashboard session lasts before signing in again. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/**
 * Everything that decides who may do what, built once by the hub: accounts, permissions, the
 * audit trail, the broker's accounts and the rate limits. It guards every command the hub
 * dispatches and records each one's outcome.
 */
export class Security {
  readonly accounts: AccountDirectory;
  readonly permissions: Permissions;
  readonly audit: AuditTrail;
  readonly broker: BrokerAccess;
  readonly apiLimiter: RateLimiter;
  readonly signInLimiter: RateLimiter;
  /**
   * Per address, whatever the name: a caller who changes the name on every try still cannot make
   * the hub hash passwords without end (each failed sign-in costs a full scrypt).
   */
  readonly signInAddressLimiter: RateLimiter;
  /**
   * Tokens and sessions nobody has, per address: each costs a lookup in the store (a round trip to
   * PostgreSQL), so an address that keeps presenting them is made to wait before the next is
   * looked up. Tokens the hub has verified before are answered from memory and never wait.
   */
  readonly unknownTokenLimiter: RateLimiter;
  private readonly stops: Array<() => void> = [];

  constructor(private readonly options: SecurityOptions) {
    const { store, clock, log } = options;
    this.accounts = new AccountDirectory({ store, clock });
    this.permissions = new Permissions({ accounts: this.accounts, clock, twins: options.twins });
    this.audit = new AuditTrail({ store, clock, log });
    this.broker = new BrokerAccess({
      store,
      clock,
      defaultHouseholdId: options.defaultHouseholdId,
      allowAnonymous: options.mqttAllowAnonymous ?? false,
      onRefused: (login, what, topic) => this.brokerRefused(login, what, topic),
      log,
    });
    this.apiLimiter = new RateLimiter(options.apiRate ?? { burst: 600, perSecond: 100 }, clock);
    this.signInLimiter = new RateLimiter(options.signInRate ?? { burst: 5, perSecond: 1 / 12 }, clock);
    this.signInAddressLimiter = new RateLimiter({ burst: 30, perSecond: 1 / 2 }, clock);
    this.unknownTokenLimiter = new RateLimiter(options.unknownTokenRate ?? { burst: 50, perSecond: 5 }, clock);
  }

  get tokens(): TokenService {
    return this.options.tokens;
  }

  get clock(): Clock {
    return this.options.clock;
  }

  get store(): Store {
    return this.options.store;
  }

  /** Loads accounts and starts guarding commands. */
  async start(): Promise<void> {
    await this.accounts.load();
    await this.broker.load();
    this.stops.push(this.options.commands.addGuard((request, command) => this.guard(request, command)));
    this.stops.push(this.options.commands.addResendCheck((command) => this.resendRefusal(command)));
    this.stops.push(this.options.bus.subscribe((event) => this.onEvent(event)));
  }

  async stop(): Promise<void> {
    for (const stop of this.stops.splice(0)) stop();
    await this.audit.flush();
  }

  /**
   * The first owner's account: on first start the owner token gets a user, `owner`, whose
   * password is written once to `<data>/owner.password` (mode 0600) for signing in to the dashboard.
   */
  async ensureOwnerAccount(householdId: string, dataDir: string): Promise<User> {
    const existing = this.accounts.listUsers(householdId).find((u) => u.role === 'owner');
    const owner =
      existing ??
      (await (async () => {
        const password = randomBytes(15).toString('base64url');
        const user = await this.accounts.createUser({ householdId, name: 'owner', role: 'owner', password });
        const path = join(dataDir, 'owner.password');
        await writeFile(path, `${password}\n`, { mode: 0o600 });
        await chmod(path, 0o600);
        return user;
      })());
    for (const token of await this.options.store.listTokens(householdId)) {
      if (token.userId === null && token.role === 'owner' && token.scopes.includes(SERVER_SCOPE)) {
        await this.options.tokens.update({ ...token, userId: owner.id });
      }
    }
    return owner;
  }

  /** The audit trail's name for a principal: the user's name rather than their token's. */
  actorOf(principal: Principal): AuditActor {
    const actor = actorOf(principal);
    if (actor.kind !== 'user') return actor;
    return { ...actor, name: this.accounts.user(principal.householdId, actor.id)?.name ?? principal.name };
  }

  /** An in-memory broker login for the demo's devices (a Zigbee2MQTT bridge's rights), never stored. */
  demoDeviceLogin(): { username: string; password: string } {
    const username = `demo-home-${randomBytes(3).toString('hex')}`;
    const password = randomBytes(24).toString('base64url');
    const login: BrokerLogin = {
      householdId: this.options.defaultHouseholdId,
      publish: ['zigbee2mqtt/#', 'homeassistant/+/+/config', 'homeassistant/+/+/+/config'],
      subscribe: ['zigbee2mqtt/+/set', 'zigbee2mqtt/+/set/+', 'zigbee2mqtt/+/get', 'homeassistant/status'],
      actor: { kind: 'device', id: username, name: 'demo home' },
    };
    // Digests of equal length, compared in constant time: how long a wrong guess takes tells
    // nothing about how much of it was right.
    const digest = (text: string) => createHash('sha256').update(text).digest();
    const expected = digest(password);
    this.broker.addResolver(async (u, p) => (u === username && timingSafeEqual(digest(p), expected) ? login : null));
    return { username, password };
  }

  private guard(request: CommandRequest, command: Command) {
    const { principal } = request;
    const { action } = command;
    const rule = request.issuedBy.startsWith('rule:');
    // A rule acting on its own is asked nothing here, and nothing is made for it (this runs for
    // every automated command); its commands are in its traces, not the audit trail (onEvent).
    if (!principal && rule) return null;
    const via = request.via ?? (rule ? 'automation' : 'internal');
    const actor: AuditActor = principal
      ? this.actorOf(principal)
      : { kind: rule ? 'rule' : 'system', id: request.issuedBy, name: request.issuedBy };
    if (principal) {
      const twin = this.options.twins.get(request.householdId, request.thing);
      const hidden = !this.permissions.canSee(principal, request.thing);
      const refusal =
        principal.householdId !== request.householdId
          ? 'that thing belongs to another household'
          : hidden
            ? 'a guest may only use the things they were given'
            : twin
              ? this.permissions.commandRefusal(principal, twin.thing, action)
              : null;
      if (refusal) {
        this.audit.record({
          householdId: request.householdId,
          actor,
          via,
          thing: request.thing,
          action,
          result: 'denied',
          reason: refusal,
        });
        // A thing a guest was not given does not exist for them, here as in every listing.
        return hidden ? notFound(`thing ${JSON.stringify(request.thing)}`) : forbidden(refusal);
      }
    }
    // Kept with the command (and in its stored row), so its outcome is recorded against whoever
    // asked, through the interface they used, even when it ends after a restart.
    command.requestedBy = { actor, via };
    return null;
  }

  /**
   * Why a command accepted before a restart may not be sent now: whoever asked is checked again as
   * they are now (the pass's window and revocation, the person's account and role, the token's
   * revocation), not as they were when it was accepted. A rule's own command is its rule's, whose
   * change was checked when it was made: it is sent as before. The failure is audited (onEvent).
   */
  private async resendRefusal(command: Command): Promise<string | null> {
    const asker = command.requestedBy?.actor;
    if (!asker || asker.kind === 'rule' || asker.kind === 'system' || asker.kind === 'device') return null;
    const why = await this.withdrawn(command, asker);
    return why === null ? null : `not sent after the hub restarted: ${why}`;
  }

  private async withdrawn(command: Command, asker: AuditActor): Promise<string | null> {
    const { householdId } = command;
    const twin = this.options.twins.get(householdId, command.thing);
    if (!twin) return null;
    const as = (fields: Pick<Principal, 'userId' | 'role' | 'scopes' | 'tokenId'>): Principal => ({
      householdId,
      name: asker.name,
      ...fields,
    });
    if (asker.kind === 'pass') {
      const pass = this.accounts.pass(householdId, asker.id);
      if (pass && pass.revokedAt === null && this.options.clock.now() >= pass.to)
        return `the guest pass ended at ${new Date(pass.to).toISOString()}`;
      const principal = as({ userId: null, role: 'guest', scopes: [`${PASS_SCOPE_PREFIX}${asker.id}`], tokenId: '' });
      return this.permissions.commandRefusal(principal, twin.thing, command.action);
    }
    if (asker.kind === 'user') {
      const user = this.accounts.user(householdId, asker.id);
      if (!user) return `the account of ${asker.name} was removed`;
      const principal = as({ userId: user.id, role: user.role, scopes: [], tokenId: '' });
      return this.permissions.commandRefusal(principal, twin.thing, command.action);
    }
    const token = (await this.options.store.listTokens(householdId)).find((t) => t.id === asker.id);
    const now = this.options.clock.now();
    if (!token || (token.revokedAt !== null && token.revokedAt <= now)) return `the token ${asker.name} was revoked`;
    if (token.expiresAt !== null && token.expiresAt <= now) return `the token ${asker.name} expired`;
    const principal = as({ userId: token.userId, role: token.role, scopes: token.scopes, tokenId: token.id });
    return this.permissions.commandRefusal(principal, twin.thing, command.action);
  }

  /** Records each command's acceptance and, if it comes to that, its failure. */
  private onEvent(event: HubEvent): void {
    if (event.type !== 'command') return;
    const { command } = event;
    if (command.status !== 'pending' && command.status !== 'failed' && command.status !== 'expired') return;
    // A rule's own commands are not audited, accepted or failed: the rule's change was (by whom,
    // through what), and each of its commands, with its outcome, is in its trace and in the
    // command log. At a rule's pace, a line per command also cost the hub a tenth of its time per
    // automated message (bench round trip), and a rule whose commands all failed wrote thousands.
    const byRule = command.issuedBy.startsWith('rule:');
    if (byRule && !command.requestedBy) return;
    // A command stored before its row kept who asked is named by its `issuedBy` alone.
    const asked: CommandRequester = command.requestedBy ?? {
      actor: { kind: byRule ? 'rule' : 'system', id: command.issuedBy, name: command.issuedBy },
      via: byRule ? 'automation' : 'internal',
    };
    this.audit.record({
      householdId: command.householdId,
      actor: asked.actor,
      via: asked.via,
      thing: command.thing,
      action: command.action,
      result: command.status === 'pending' ? 'accepted' : 'failed',
      reason: command.status === 'pending' ? null : (command.error ?? command.status),
      commandId: command.id,
    });
  }

  /**
   * A refused publish or subscription, at most once a minute per account and topic, and at most
   * BROKER_REFUSALS_PER_MINUTE lines a minute per account: one SUBSCRIBE may name thousands of
   * topics, and a device (or whoever took its password) must not fill the household's trail and
   * bury what is in it. The last line that fits says the rest of that minute's are left out.
   */
  private readonly refusalsLogged = new Map<string, number>();
  private readonly refusalMinutes = new Map<string, { from: number; lines: number }>();
  private brokerRefused(login: BrokerLogin, what: 'publish' | 'subscribe', topic: string): void {
    const key = `${login.actor.id}\u0000${what}\u0000${topic}`;
    const now = this.options.clock.now();
    const last = this.refusalsLogged.get(key);
    if (last !== undefined && now - last < 60_000) return;
    let minute = this.refusalMinutes.get(login.actor.id);
    if (!minute || now - minute.from >= 60_000) {
      if (this.refusalMinutes.size > 10_000) this.refusalMinutes.clear();
      minute = { from: now, lines: 0 };
      this.refusalMinutes.set(login.actor.id, minute);
    }
    if (minute.lines >= BROKER_REFUSALS_PER_MINUTE) return;
    minute.lines++;
    if (this.refusalsLogged.size > 10_000) this.refusalsLogged.clear();
    this.refusalsLogged.set(key, now);
    const more =
      minute.lines === BROKER_REFUSALS_PER_MINUTE
        ? `; this account's further refusals are left out of the trail until ${new Date(minute.from + 60_000).toISOString()}`
        : '';
    this.audit.record({
      householdId: login.householdId,
      actor: login.actor,
      via: 'mqtt',
      action: what,
      result: 'denied',
      reason: `${what} on ${topic} is outside this account's topics${more}`,
    });
  }
}
