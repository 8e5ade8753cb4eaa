import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Tracker passwords: typed into a phone once, so they are random (not chosen) but still stored
 * only as scrypt hashes. A verified password is remembered as a sha256 digest in memory, so a
 * phone reporting every few seconds costs one scrypt per hub start, not one per report.
 */

const SCRYPT = { N: 16_384, r: 8, p: 1, keylen: 32 } as const;

/** A password easy to type on a phone: 20 characters from an alphabet without look-alikes. */
export function newPassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(20);
  let password = '';
  // 256 % 54 leaves a tiny bias; irrelevant at 20 characters (over 110 bits).
  for (const byte of bytes) password += alphabet[byte % alphabet.length];
  return password;
}

function derive(password: string, salt: Buffer, keylen: number, params: { N: number; r: number; p: number }) {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, keylen, params, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash`, so the parameters can be raised later without breaking old hashes. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64url');
  const expected = Buffer.from(parts[5], 'base64url');
  const key = await derive(password, salt, expected.length, { N, r, p });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * How many scrypt checks of device passwords (phones, chargers) may run at once. Node runs scrypt
 * on its thread pool (four threads), shared with owners signing in and the hub's file work:
 * without a cap, anyone who can reach `/api/owntracks` or the broker could send wrong passwords
 * fast enough to hold every thread, and the dashboard's sign-in then took twenty seconds. Known
 * phones are not slowed: a verified password is remembered and costs no scrypt.
 */
export const MAX_CONCURRENT_CHECKS = 2;
/**
 * Shared by every CredentialCheck (phones, OCPP chargers), so together they stay under the cap.
 * Checks wait per username and the names take turns: in one queue, a stranger's flood of wrong
 * passwords for one charger held another charger's right one back by every check before it.
 */
const hashing = { running: 0, waiting: new Map<string, Array<() => void>>() };

/** Hands a finished check's place to the oldest check of the next name in turn, or frees it. */
function passTurn(): void {
  const next = hashing.waiting.entries().next();
  if (next.done) {
    hashing.running--;
    return;
  }
  const [username, queue] = next.value;
  const wake = queue.shift();
  // To the back of the turn order, while it has more waiting.
  hashing.waiting.delete(username);
  if (queue.length > 0) hashing.waiting.set(username, queue);
  wake?.();
}

/** Checks a username and password against a lookup of stored hashes, answering the same way for every failure. */
export class CredentialCheck {
  private readonly verified = new Map<string, Buffer>();
  /** Hashed once, so an unknown user costs the same scrypt as a known one and the timing tells nothing. */
  private decoy: Promise<string> | null = null;

  constructor(
    private readonly hashOf: (username: string) => string | undefined,
    /** The slow comparison; tests count how many run at once. */
    private readonly verify: (password: string, stored: string) => Promise<boolean> = verifyPassword,
  ) {}

  async check(username: string, password: string): Promise<boolean> {
    if (username.length > 200 || password.length > 200) return false;
    const stored = this.hashOf(username);
    const remembered = this.verified.get(username);
    if (stored && remembered) {
      const given = digest(`${stored}\u0000${password}`);
      if (timingSafeEqual(given, remembered)) return true;
    }
    if (!stored) {
      this.decoy ??= hashPassword(newPassword());
      await this.slowCheck(username, password, await this.decoy);
      return false;
    }
    if (!(await this.slowCheck(username, password, stored))) return false;
    if (this.verified.size > 10_000) this.verified.clear();
    // Keyed by the stored hash too, so a changed password invalidates what was remembered.
    this.verified.set(username, digest(`${stored}\u0000${password}`));
    return true;
  }

  forget(username: string): void {
    this.verified.delete(username);
  }

  /** One scrypt comparison, waiting its turn (see passTurn) while MAX_CONCURRENT_CHECKS others run. */
  private async slowCheck(username: string, password: string, stored: string): Promise<boolean> {
    if (hashing.running < MAX_CONCURRENT_CHECKS) hashing.running++;
    else {
      // The place is handed over by passTurn, already counted as running.
      await new Promise<void>((resolve) => {
        const queue = hashing.waiting.get(username);
        if (queue) queue.push(resolve);
        else hashing.waiting.set(username, [resolve]);
      });
    }
    try {
      return await this.verify(password, stored);
    } finally {
      passTurn();
    }
  }
}

/** `Authorization: Basic …` as a user and password, or null when absent or malformed. */
export function parseBasicAuth(header: string | undefined): { username: string; password: string } | null {
  if (!header) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!match) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
