import type { Clock } from '../core/clock.ts';
import { badRequest, conflict, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { KeyedSerial } from '../core/serial.ts';
import { hashPassword, verifyPassword } from '../people/credentials.ts';
import type { AccountKind, AccountRecord, Store } from '../store/store.ts';

/** What a person may do in their household; see permissions.ts for what each role allows. */
export type Role = 'owner' | 'adult' | 'child' | 'guest';
export const ROLES: readonly Role[] = ['owner', 'adult', 'child', 'guest'];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export interface User {
  id: string;
  householdId: string;
  name: string;
  role: Role;
  /** scrypt hash; null until a password is set (the first owner before they choose one). */
  passwordHash: string | null;
  createdAt: number;
}

export interface NewUser {
  householdId: string;
  name: string;
  role: Role;
  /** null for a user who has none yet. */
  password: string | null;
}

/** Lets a user (a child, a guest account) run some actions on some things; `*` means any. */
export interface Grant {
  id: string;
  householdId: string;
  userId: string;
  things: string[];
  actions: string[];
  createdAt: number;
}

/** A time-boxed, scoped key for someone outside the household, backed by one API token. */
export interface GuestPass {
  id: string;
  householdId: string;
  name: string;
  things: string[];
  actions: string[];
  from: number;
  to: number;
  tokenId: string;
  createdAt: number;
  revokedAt: number | null;
}

const USER_NAME = /^[\p{L}\p{N} ._'-]{1,64}$/u;

/**
 * What tells two user names apart: the same letters typed decomposed (e + a combining accent, as
 * some keyboards and pasted text give them), in full-width forms or in another case are one name,
 * to sign in with and when a name is taken. Names are kept as typed, composed (NFC).
 */
export function userNameKey(name: string): string {
  return name.normalize('NFKC').trim().toLowerCase();
}

/** A password a person chose: long enough to resist guessing, short enough for scrypt to stay cheap. */
export function checkPasswordRules(password: string): void {
  if (password.length < 10) throw badRequest('password must be at least 10 characters');
  if (password.length > 200) throw badRequest('password must be at most 200 characters');
}

/**
 * People's accounts, their grants and guest passes: kept in memory (a household has a handful)
 * so every command's permission check is a map lookup, and written through to the store.
 */
export class AccountDirectory {
  private readonly users = new Map<string, User>();
  private readonly grants = new Map<string, Grant>();
  private readonly passes = new Map<string, GuestPass>();
  /** Hashed once, so an unknown name costs the same scrypt as a wrong password. */
  private decoy: Promise<string> | null = null;
  /**
   * New users, one at a time per household: a name is unique in its household, and the check
   * comes before the password's hash is awaited, so two at once both passed it.
   */
  private readonly creates = new KeyedSerial();

  constructor(private readonly options: { store: Store; clock: Clock }) {}

  async load(): Promise<void> {
    const { store } = this.options;
    for (const record of await store.listAccountRecords('user')) this.users.set(record.id, record.body as never);
    for (const record of await store.listAccountRecords('grant')) this.grants.set(record.id, record.body as never);
    for (const record of await store.listAccountRecords('guest_pass')) this.passes.set(record.id, record.body as never);
  }

  // -- users ------------------------------------------------------------------------------------

  async createUser(request: NewUser): Promise<User> {
    return this.creates.run(request.householdId, () => this.addUser(request));
  }

  private async addUser(request: NewUser): Promise<User> {
    const name = request.name.normalize('NFC').trim();
    if (!USER_NAME.test(name)) throw badRequest("name must be 1–64 letters, digits, spaces or . _ ' -");
    if (this.userNamed(request.householdId, name)) throw conflict(`a user named ${JSON.stringify(name)} exists`);
    if (request.password !== null) checkPasswordRules(request.password);
    const now = this.options.clock.now();
    const user: User = {
      id: newId(now, 'usr_'),
      householdId: request.householdId,
      name,
      role: request.role,
      passwordHash: request.password === null ? null : await hashPassword(request.password),
      createdAt: now,
    };
    await this.save('user', user);
    this.users.set(user.id, user);
    return user;
  }

  /** Whether `password` is the user's password (false for a user who has none). */
  async checkPassword(user: User, password: string): Promise<boolean> {
    return user.passwordHash !== null && (await verifyPassword(password.slice(0, 200), user.passwordHash));
  }

  async setPassword(user: User, password: string): Promise<void> {
    checkPasswordRules(password);
    const updated = { ...user, passwordHash: await hashPassword(password) };
    await this.save('user', updated);
    this.users.set(user.id, updated);
  }

  async setRole(user: User, role: Role): Promise<User> {
    const updated = { ...user, role };
    await this.save('user', updated);
    this.users.set(user.id, updated);
    return updated;
  }

  async removeUser(householdId: string, id: string): Promise<User> {
    const user = this.user(householdId, id);
    if (!user) throw notFound(`user ${JSON.stringify(id)}`);
    await this.options.store.deleteAccountRecord('user', householdId, id);
    this.users.delete(id);
    for (const grant of this.grantsOf(householdId, id)) await this.removeGrant(householdId, grant.id);
    return user;
  }

  user(householdId: string, id: string): User | undefined {
    const user = this.users.get(id);
    return user?.householdId === householdId ? user : undefined;
  }

  userNamed(householdId: string, name: string): User | undefined {
    const wanted = userNameKey(name);
    return this.listUsers(householdId).find((u) => userNameKey(u.name) === wanted);
  }

  listUsers(householdId: string): User[] {
    return [...this.users.values()].filter((u) => u.householdId === householdId);
  }

  /**
   * The user a name and password sign in as. Without a household, a name several households use
   * is told apart by its password ('ambiguous' only when the password fits more than one). A
   * failure answers null after one password check, or one per household using the name: a name
   * that several households share takes a little longer to refuse, which is all it gives away.
   */
  async signIn(name: string, password: string, householdId?: string): Promise<User | null | 'ambiguous'> {
    const wanted = userNameKey(name);
    const matches = [...this.users.values()].filter(
      (u) => userNameKey(u.name) === wanted && (householdId === undefined || u.householdId === householdId),
    );
    // A name several households use: the password says whose it is. Only a caller who knows a
    // password shared by two of them is asked to say which household; anyone else learns nothing
    // about other households' names (a wrong password is a plain refusal).
    if (matches.length > 1 && password.length <= 200) {
      const fits: User[] = [];
      for (const candidate of matches) {
        if (candidate.passwordHash && (await verifyPassword(password, candidate.passwordHash))) fits.push(candidate);
      }
      return fits.length > 1 ? 'ambiguous' : (fits[0] ?? null);
    }
    const user = matches.length === 1 ? matches[0] : undefined;
    if (!user?.passwordHash || password.length > 200) {
      this.decoy ??= hashPassword('decoy password that matches nothing');
      await verifyPassword(password.slice(0, 200), await this.decoy);
      return null;
    }
    return (await verifyPassword(password, user.passwordHash)) ? user : null;
  }

  // -- grants -----------------------------------------------------------------------------------

  async addGrant(request: Omit<Grant, 'id' | 'createdAt'>): Promise<Grant> {
    const now = this.options.clock.now();
    const grant: Grant = { ...request, id: newId(now, 'grt_'), createdAt: now };
    await this.save('grant', grant);
    this.grants.set(grant.id, grant);
    return grant;
  }

  async removeGrant(householdId: string, id: string): Promise<void> {
    const grant = this.grants.get(id);
    if (grant?.householdId !== householdId) throw notFound(`grant ${JSON.stringify(id)}`);
    await this.options.store.deleteAccountRecord('grant', householdId, id);
    this.grants.delete(id);
  }

  listGrants(householdId: string): Grant[] {
    return [...this.grants.values()].filter((g) => g.householdId === householdId);
  }

  grantsOf(householdId: string, userId: string): Grant[] {
    return this.listGrants(householdId).filter((g) => g.userId === userId);
  }

  // -- guest passes -----------------------------------------------------------------------------

  async savePass(pass: GuestPass): Promise<void> {
    await this.save('guest_pass', pass);
    this.passes.set(pass.id, pass);
  }

  pass(householdId: string, id: string): GuestPass | undefined {
    const pass = this.passes.get(id);
    return pass?.householdId === householdId ? pass : undefined;
  }

  listPasses(householdId: string): GuestPass[] {
    return [...this.passes.values()].filter((p) => p.householdId === householdId);
  }

  private async save(kind: AccountKind, body: { id: string; householdId: string; createdAt: number }): Promise<void> {
    const record: AccountRecord = {
      kind,
      householdId: body.householdId,
      id: body.id,
      body: body as unknown as Record<string, unknown>,
      createdAt: body.createdAt,
    };
    await this.options.store.saveAccountRecord(record);
  }
}
