import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SERVER_SCOPE } from '../auth/permissions.ts';
import type { TokenService } from '../auth/tokens.ts';
import { vocabularyProperties } from '../model/thing.ts';
import type { Household, Store, TokenRecord } from '../store/store.ts';
import type { Clock } from './clock.ts';
import type { HubCore } from './core.ts';

/** The household every single-home install has; more can be created once accounts exist. */
export const DEFAULT_HOUSEHOLD_ID = 'home';

/** Each household is also a thing, so automations can use its presence like any other state. */
export async function ensureHouseholdThing(core: HubCore, householdId: string, name: string): Promise<void> {
  if (core.getThing(householdId, 'household')) return;
  await core.upsertThing({
    id: 'household',
    householdId,
    kind: 'household',
    name,
    adapter: 'core',
    properties: vocabularyProperties(['presence.anyone_home', 'presence.everyone_away']),
    actions: {},
  });
}

export async function ensureDefaultHousehold(options: {
  store: Store;
  core: HubCore;
  clock: Clock;
  name?: string;
}): Promise<Household> {
  const { store, core, clock } = options;
  let household = await store.getHousehold(DEFAULT_HOUSEHOLD_ID);
  if (!household) {
    household = { id: DEFAULT_HOUSEHOLD_ID, name: options.name ?? 'Home', settings: {}, createdAt: clock.now() };
    await store.saveHousehold(household);
  }
  await ensureHouseholdThing(core, household.id, household.name);
  return household;
}

/**
 * The owner's token, written once to `<data>/owner.token` (mode 0600) so the person who started
 * the hub can sign in. If the file is gone or its token no longer works, a new one is made.
 */
export async function ensureOwnerToken(options: {
  dataDir: string;
  tokens: TokenService;
  householdId: string;
}): Promise<{ token: string; created: boolean; path: string }> {
  const path = join(options.dataDir, 'owner.token');
  const existing = await readFile(path, 'utf8').then(
    (text) => text.trim(),
    () => null,
  );
  if (existing && (await options.tokens.verify(existing))) return { token: existing, created: false, path };
  const { secret } = await options.tokens.create({
    householdId: options.householdId,
    name: 'owner (first start)',
    role: 'owner',
    scopes: ['server'],
  });
  await writeFile(path, `${secret}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return { token: secret, created: true, path };
}

/**
 * Whether `userId` is the hub's first owner: the user `owner` made at first start, whose password
 * is `<data>/owner.password` and to whom the token in `<data>/owner.token` belongs (the hub ties
 * that server token to them at every start). The start banner names them, and the demo's wallbox
 * password is derived from their token, so they must stay while those files describe them.
 */
export function isHubFirstOwner(householdId: string, userId: string, tokens: TokenRecord[]): boolean {
  return (
    householdId === DEFAULT_HOUSEHOLD_ID &&
    tokens.some((t) => t.userId === userId && t.role === 'owner' && t.scopes.includes(SERVER_SCOPE))
  );
}
