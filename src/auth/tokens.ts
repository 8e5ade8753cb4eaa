import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { HubError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { Watchers } from '../core/watchers.ts';
import type { Store, TokenRecord } from '../store/store.ts';
import { PASS_SCOPE_PREFIX, SESSION_SCOPE } from './permissions.ts';

/** Who is calling: resolved from a token on every request and every stream. */
export interface Principal {
  householdId: string;
  tokenId: string;
  userId: string | null;
  role: string;
  scopes: string[];
  name: string;
  /**
   * When the token stops working (epoch ms; null: never). A connection that outlives a request
   * (a WebSocket stream) ends then, as it ends when the token is revoked (TokenService.whileValid).
   */
  expiresAt?: number | null;
}

/**
 * Who a command a principal asks for is recorded as issued by: the person, or the token (a guest
 * pass has no user). Guests are shown only commands issued by them (see commandsShownTo).
 */
export function issuerOf(principal: Pick<Principal, 'userId' | 'tokenId'>): string {
  return principal.userId ?? principal.tokenId;
}

export interface NewToken {
  householdId: string;
  name: string;
  role: string;
  userId?: string | null;
  scopes?: string[];
  expiresAt?: number | null;
}

const TOKEN_PREFIX = 'triad_';

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * API tokens: random secrets shown once and stored only as sha256 hashes (the secrets carry 256
 * bits, so a fast hash is safe; passwords, which do not, use scrypt elsewhere).
 */
export class TokenService {
  /** Verified tokens by hash, so a busy stream does not hit the store on every call. */
  private readonly cache = new Map<string, TokenRecord>();
  /** What to call when a token is revoked, by token id: the connections opened with it. */
  private readonly revoked = new Watchers<string>();

  /**
   * The hashes of every stored token that still works (not revoked, not expired when loaded), read
   * once at start and kept up as tokens are made, revoked and found expired: a token in it is
   * never held up as unknown (see verify's `unknown`), even before its first use since the start.
   * About 150 bytes a token; the table holds each household's tokens and sessions, a small one.
   */
  private readonly stored = new Set<string>();

  constructor(private readonly options: { store: Store; clock: Clock }) {}

  /** Reads which tokens are stored; the hub calls it once at start, before it answers anyone. */
  async load(): Promise<void> {
    const households = await this.options.store.listHouseholds();
    const lists = await Promise.all(households.map((h) => this.options.store.listTokens(h.id)));
    const now = this.options.clock.now();
    for (const record of lists.flat()) if (stillWorks(record, now)) this.stored.add(record.hash);
  }

  async create(request: NewToken): Promise<{ secret: string; record: TokenRecord }> {
    const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const now = this.options.clock.now();
    const record: TokenRecord = {
      id: newId(now, 'tok_'),
      householdId: request.householdId,
      userId: request.userId ?? null,
      name: request.name,
      hash: hashToken(secret),
      role: request.role,
      scopes: request.scopes ?? [],
      createdAt: now,
      expiresAt: request.expiresAt ?? null,
      revokedAt: null,
    };
    await this.options.store.saveToken(record);
    this.stored.add(record.hash);
    return { secret, record };
  }

  /**
   * The principal for a presented secret, or null if it is unknown, expired or revoked; a revoked
   * guest pass or session throws a 401 HubError that says so (see revokedReason). A token
   * past its expiry whose scopes `keepExpired` accepts still names its principal (never a revoked
   * one): a guest pass after its window is refused as that (403, audited), not as a token nobody
   * knows. One lookup either way, so made-up tokens cost the store no more than before.
   *
   * `unknown` is called for a secret that is not a stored token that still works (as far as this
   * process knows: unknown, expired or revoked), before any lookup, and may throw to refuse it
   * without one: the API and the VISS endpoint hold up an address that keeps presenting those
   * (verifyCounting). The store is still asked if it does not throw, for a token another hub
   * process on the same PostgreSQL made.
   */
  async verify(
    secret: string | undefined | null,
    options: { keepExpired?: (scopes: string[]) => boolean; unknown?: () => void } = {},
  ): Promise<Principal | null> {
    if (!secret || secret.length > 200) return null;
    const hash = hashToken(secret);
    let record = this.cache.get(hash) ?? null;
    // Only a token that still works is spared: one that has expired or was revoked since is, to
    // the limiter, a token nobody has, whether this process has its record in memory or not.
    const works = record ? stillWorks(record, this.options.clock.now()) : this.stored.has(hash);
    if (options.unknown && !works) options.unknown();
    if (!record) {
      record = await this.options.store.findTokenByHash(hash);
      if (!record) return null;
      // Belt and braces: the store matched on the hash; compare in constant time anyway.
      if (!timingSafeEqual(Buffer.from(record.hash, 'hex'), Buffer.from(hash, 'hex'))) return null;
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(hash, record);
    }
    const now = this.options.clock.now();
    // A token that expired while the hub runs leaves the stored set (read once, at start) the
    // first time it is found so, rather than being spared until a restart.
    if (!stillWorks(record, now)) this.stored.delete(hash);
    if (record.revokedAt !== null && record.revokedAt <= now) {
      const why = revokedReason(record.scopes);
      if (why) throw new HubError(401, 'unauthorized', why);
      return null;
    }
    if (record.expiresAt !== null && record.expiresAt <= now && !options.keepExpired?.(record.scopes)) return null;
    return {
      householdId: record.householdId,
      tokenId: record.id,
      userId: record.userId,
      role: record.role,
      scopes: record.scopes,
      name: record.name,
      expiresAt: record.expiresAt,
    };
  }

  /**
   * Calls `onEnd` once, with why, when the principal's token is revoked or expires: a connection
   * that outlives the request that opened it (a WebSocket stream, a VISS session) closes then,
   * rather than carrying on with a token that "stops working at once" everywhere else. Returns
   * the function that stops watching (call it when the connection closes).
   */
  whileValid(principal: Principal, onEnd: (reason: string) => void): () => void {
    const { clock } = this.options;
    let cancelExpiry: (() => void) | null = null;
    const stop = () => {
      unwatch();
      cancelExpiry?.();
    };
    const end = (reason: string) => {
      stop();
      onEnd(reason);
    };
    const unwatch = this.revoked.add(principal.tokenId, () => end('the token was revoked'));
    const expiresAt = principal.expiresAt ?? null;
    if (expiresAt !== null)
      cancelExpiry = clock.setTimeout(() => end('the token expired'), Math.max(0, expiresAt - clock.now()));
    return stop;
  }

  /** Revokes a token at once: the cache forgets it, so the very next call with it fails. */
  async revoke(record: TokenRecord): Promise<void> {
    await this.update({ ...record, revokedAt: this.options.clock.now() });
  }

  /** Revokes a household's token by id; false when it has no such token. */
  async revokeById(householdId: string, id: string): Promise<boolean> {
    const record = (await this.options.store.listTokens(householdId)).find((t) => t.id === id);
    if (!record) return false;
    if (record.revokedAt === null) await this.revoke(record);
    return true;
  }

  /** Saves a changed token record and drops the cached copy, so the change holds from the next call. */
  async update(record: TokenRecord): Promise<void> {
    await this.options.store.saveToken(record);
    this.cache.delete(record.hash);
    if (stillWorks(record, this.options.clock.now())) this.stored.add(record.hash);
    else this.stored.delete(record.hash);
    if (record.revokedAt !== null && record.revokedAt <= this.options.clock.now()) this.revoked.end(record.id);
  }
}

/** Whether a token may still be used: not revoked, and not past its expiry. */
function stillWorks(record: TokenRecord, now: number): boolean {
  return (record.revokedAt === null || record.revokedAt > now) && (record.expiresAt === null || record.expiresAt > now);
}

/**
 * What a revoked guest pass or dashboard session is told (401) instead of "a valid token is
 * required": the guest is not left wondering whether they mistyped it, and a browser whose session
 * was ended (signed out, or its password changed) hears why. Only whoever holds the secret can
 * learn this, and nothing more than that it was revoked (no name, no window, no household); the
 * revoked record is kept anyway (as a hash, like every token) so that it keeps being refused. Any
 * other revoked token stays an unknown one.
 */
function revokedReason(scopes: string[]): string | null {
  if (scopes.some((scope) => scope.startsWith(PASS_SCOPE_PREFIX))) return 'this guest pass was revoked';
  if (scopes.includes(SESSION_SCOPE))
    return 'this session has ended (signed out, or the password changed): sign in again';
  return null;
}
